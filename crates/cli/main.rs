//! `lockcheck`: the command line of lockcheck's offline analyzer.
//!
//! `lockcheck analyze [OPTIONS] <TRACE>...` reads traces, reports lock-order violations, a suggested
//! lock hierarchy and timeouts. Exit codes: 0 no violation, 1 violations found, 2 bad input or
//! usage. All logic lives in `lockcheck-analyze`; this file parses arguments, picks the output, and
//! maps results to exit codes in one place.

use clap::{Parser, Subcommand, ValueEnum};
use lockcheck_analyze::cycles::SearchLimits;
use lockcheck_analyze::read::InputFormat;
use lockcheck_analyze::report::{render_text, TextOptions};
use lockcheck_analyze::{analyze, Levels, Options};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "lockcheck",
    version,
    about = "Lock-order analysis of lockcheck traces"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay traces and report lock-order violations, a lock hierarchy and timeouts.
    Analyze(AnalyzeArgs),
}

/// Output format of the report.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Human text: lockdep-style scenarios, tables, a summary line.
    Text,
    /// The JSON report (schema in docs/analyze.md).
    Json,
}

/// Trace format of the inputs.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum InputFormatArg {
    /// lockcheck JSON Lines.
    Json,
    /// RAPID STD text.
    Std,
    /// RAPID binary.
    RapidBin,
}

/// Levels of the lock graph to search.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LevelArg {
    /// Lock instances.
    Instance,
    /// Lock classes.
    Class,
    /// Both (a class cycle that is an instance cycle's bug is reported once).
    Both,
}

#[derive(clap::Args, Debug)]
struct AnalyzeArgs {
    /// Trace files, or directories of trace files (*.json, *.jsonl, *.std, *.data).
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Input format (default: by extension: .std, .data, else JSON).
    #[arg(long, value_enum)]
    input_format: Option<InputFormatArg>,
    /// Accept traces whose last event is cut off (a killed process).
    #[arg(long)]
    allow_truncated: bool,
    /// Also list the candidates removed by a filter, and the full hierarchy.
    #[arg(short, long)]
    verbose: bool,
    /// Levels of the lock graph to search.
    #[arg(long, value_enum, default_value_t = LevelArg::Both)]
    level: LevelArg,
    /// Stop the cycle search of a component after this many candidates.
    #[arg(long, default_value_t = 10_000)]
    max_cycles: u64,
    /// Write the suggested hierarchy as a Rust module to this file.
    #[arg(long, value_name = "FILE")]
    hierarchy_rust: Option<PathBuf>,
    /// Write the report to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("lockcheck: error: {msg}");
    ExitCode::from(2)
}

fn run_analyze(args: AnalyzeArgs) -> ExitCode {
    let opts = Options {
        levels: match args.level {
            LevelArg::Instance => Levels::Instance,
            LevelArg::Class => Levels::Class,
            LevelArg::Both => Levels::Both,
        },
        limits: SearchLimits {
            max_cycles: args.max_cycles,
            ..SearchLimits::default()
        },
        input_format: args.input_format.map(|f| match f {
            InputFormatArg::Json => InputFormat::Json,
            InputFormatArg::Std => InputFormat::Std,
            InputFormatArg::RapidBin => InputFormat::RapidBin,
        }),
        allow_truncated: args.allow_truncated,
    };
    let report = match analyze(&args.traces, &opts) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let text = match args.format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => return fail(e),
        },
        Format::Text => {
            let color = args.output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            render_text(
                &report,
                TextOptions {
                    verbose: args.verbose,
                    color,
                },
            )
        }
    };
    if let Some(path) = &args.hierarchy_rust {
        if let Err(e) = std::fs::write(path, &report.hierarchy.rust) {
            return fail(format_args!("{}: {e}", path.display()));
        }
    }
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                return fail(format_args!("{}: {e}", path.display()));
            }
            if args.format == Format::Text {
                // The summary still goes to the terminal.
                let last = text.lines().last().unwrap_or_default();
                eprintln!("{last}");
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                // A closed pipe (`| head`) is not a failure of the analysis.
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return fail(e);
                }
            }
        }
    }
    if report.has_violations() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Analyze(args) => run_analyze(args),
    }
}
