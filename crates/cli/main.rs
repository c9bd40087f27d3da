//! `lockcheck`: the command line of lockcheck's offline analyzer.
//!
//! `lockcheck analyze [OPTIONS] <TRACE>...` reads traces, reports lock-order violations, a suggested
//! lock hierarchy and timeouts. Exit codes: 0 no violation, 1 violations found, 2 bad input or
//! usage. `lockcheck run [OPTIONS] -- <COMMAND>...` runs a command (a test suite) with recording on
//! and analyzes what it recorded (see `run.rs`). `lockcheck explain`, `completions` and `man` print
//! help. All logic lives in `lockcheck-analyze`; this file parses arguments, picks the output, and
//! maps results to exit codes in one place ([`report_exit_code`]): 0 clean, 1 violations, 2 bad input
//! or usage, 3 no violation found but a search limit was hit (`--allow-incomplete`: 0).

#[cfg(target_os = "linux")]
mod alloc;
mod run;

/// Large blocks in huge-page mappings of their own (see `alloc.rs`).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: alloc::HugePages = alloc::HugePages;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use lockcheck_analyze::baseline::Baseline;
use lockcheck_analyze::config::Config;
use lockcheck_analyze::cycles::SearchLimits;
use lockcheck_analyze::read::InputFormat;
use lockcheck_analyze::report::Report;
use lockcheck_analyze::report::{render_text, render_violations, summary_line, TextOptions};
use lockcheck_analyze::sarif::{to_sarif, SarifOptions};
use lockcheck_analyze::{analyze_with, rules, Analysis, Levels, Options, Progress};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
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

// Parsed once per process: the size of the `analyze` variant (all its flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Replay traces and report lock-order violations, a lock hierarchy and timeouts.
    #[command(
        after_help = "Exit codes:\n  0  no violation (and the search was complete)\n  1  a violation not in the baseline was found\n  2  bad input or usage\n  3  no violation found, but a search limit was hit (the warning names it and the flag that\n     raises it); CI should treat it as a failure, or pass --allow-incomplete to accept it"
    )]
    Analyze(AnalyzeArgs),
    /// Run a command (a test suite) with lock tracing on, then analyze every trace it wrote.
    #[command(after_help = run::EXIT_CODES_HELP)]
    Run(run::RunArgs),
    /// Explain a finding, filter or timeout flag: what it means and how to fix it.
    Explain {
        /// A rule id (lockcheck/lock-order-inversion), filter (gate-lock) or flag (livelock-risk);
        /// without one, list them all.
        rule: Option<String>,
    },
    /// Convert a trace between formats: to lockcheck's binary `.lct` or to JSON Lines (by the
    /// output's extension, or --to). Any input format is read (JSON Lines, .lct, STD, RAPID
    /// binary). Exit 0, or 2 on bad input.
    Convert {
        /// The trace to read.
        input: PathBuf,
        /// The file to write.
        output: PathBuf,
        /// Input format (default: by the content, else the extension).
        #[arg(long, value_enum)]
        input_format: Option<InputFormatArg>,
        /// Output format (default: `lct` for a `.lct` output, else `json`; an output named
        /// `.std` or `.data`, formats convert does not write, needs `--to json`).
        #[arg(long, value_enum)]
        to: Option<ConvertTo>,
        /// Convert the complete events of a trace whose last event is cut off.
        #[arg(long)]
        allow_truncated: bool,
    },
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout.
    Man {
        /// A subcommand (e.g. `analyze`) for its own page; the main page without one.
        command: Option<String>,
    },
}

/// Output format of the report.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Human text: lockdep-style scenarios, tables, a summary line.
    Text,
    /// The JSON report (schema in docs/analyze.md).
    Json,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
    /// Graphviz DOT of the lock-order graph, violations in red.
    Dot,
    /// One self-contained HTML page: graph, violations, hierarchy, timeouts.
    Html,
}

/// Output format of `convert`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ConvertTo {
    /// lockcheck JSON Lines.
    Json,
    /// lockcheck's binary format.
    Lct,
}

/// When to color text output.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ColorArg {
    /// When stdout is a terminal and NO_COLOR is unset or empty.
    Auto,
    /// Always (overrides NO_COLOR).
    Always,
    /// Never.
    Never,
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
    /// lockcheck's binary format (.lct).
    Lct,
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
    /// Trace files, or directories of trace files (*.json, *.jsonl, *.std, *.data, *.lct).
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Input format (default: by the content: the .lct magic, a JSON object, RAPID's binary header or an STD line; else by extension: .std, .data, .lct, else JSON).
    #[arg(long, value_enum)]
    input_format: Option<InputFormatArg>,
    /// Accept traces whose last event is cut off (a killed process).
    #[arg(long)]
    allow_truncated: bool,
    #[command(flatten)]
    common: AnalysisArgs,
    /// Write the suggested hierarchy as a Rust module to this file.
    #[arg(long, value_name = "FILE")]
    hierarchy_rust: Option<PathBuf>,
    /// Write the report to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write the current findings as a baseline file (the run then exits 0 unless the input is
    /// bad).
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// Write the suggested timeouts as a [wait_timeout] table for LOCKCHECK_POLICY to this file.
    #[arg(long, value_name = "FILE")]
    timeouts_toml: Option<PathBuf>,
}

/// The analysis flags `analyze` and `run` share: what to search, what to accept, how to print.
#[derive(clap::Args, Debug)]
struct AnalysisArgs {
    /// Also list the candidates removed by a filter, and the full hierarchy.
    #[arg(short, long)]
    verbose: bool,
    /// Levels of the lock graph to search.
    #[arg(long, value_enum, default_value_t = LevelArg::Both)]
    level: LevelArg,
    /// Candidates listed per component by the enumeration of filtered cycles (a listing bound:
    /// it never changes a verdict).
    #[arg(long, default_value_t = SearchLimits::default().max_cycles, value_name = "N")]
    max_cycles: u64,
    /// Extension steps of the search for a valid cycle through one root-cause edge. When hit,
    /// the search is incomplete: named in the warnings, exit code 3 if nothing was found.
    #[arg(long, default_value_t = SearchLimits::default().max_steps, value_name = "N")]
    max_steps: u64,
    /// Work of all root-cause searches of one level together (steps and graph traversal). When
    /// hit, the search is incomplete, as for --max-steps.
    #[arg(long, default_value_t = SearchLimits::default().max_total_steps, value_name = "N")]
    max_total_steps: u64,
    /// Extension steps of the listing of filtered candidates per component (a listing bound).
    #[arg(long, default_value_t = SearchLimits::default().max_filtered_steps, value_name = "N")]
    max_filtered_steps: u64,
    /// Filtered candidates listed per level (a listing bound).
    #[arg(long, default_value_t = SearchLimits::default().max_listed, value_name = "N")]
    max_listed: u64,
    /// Further example cycles shown per root cause (`--verbose`, JSON). A report lists at most
    /// 10,000 in all, a fixed budget no option raises: past it, the later root causes list only
    /// their shortest cycle (a warning says how many). A smaller N lets more root causes list
    /// theirs.
    #[arg(long, default_value_t = SearchLimits::default().max_examples, value_name = "N")]
    max_examples: u64,
    /// Extension steps spent per root cause on further examples (only the count of cycles it
    /// closes depends on it).
    #[arg(long, default_value_t = SearchLimits::default().max_example_steps, value_name = "N")]
    max_example_steps: u64,
    /// Exit 0 instead of 3 when nothing was found but a search limit was hit (the warning is
    /// still printed).
    #[arg(long)]
    allow_incomplete: bool,
    /// Also apply the opt-in condvar rule's lost-wakeup check, as the runtime does with
    /// LOCKCHECK_CONDVAR: a condvar notified by a thread that did not take the mutex its waiters
    /// wait with (traces with `notify` events; the summary says the rule was on).
    #[arg(long)]
    condvar: bool,
    /// Make absolute source paths relative to this directory in SARIF and HTML (default: the
    /// current directory).
    #[arg(long, value_name = "DIR")]
    repo_root: Option<PathBuf>,
    /// Fail only on findings whose id is not in this baseline file.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Suppressions and declared hierarchy (default: ./lockcheck.toml if it exists).
    #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
    config: Option<PathBuf>,
    /// Ignore ./lockcheck.toml.
    #[arg(long)]
    no_config: bool,
    /// Print only the failing findings (text), no progress and no summary on stderr.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Color text output.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto, value_name = "WHEN")]
    color: ColorArg,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("lockcheck: error: {msg}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// A progress bar on stderr, for long analyses on a terminal only: a bar while reading many or
/// large traces, then a spinner while searching; when the reading was short but the search is
/// not, the spinner appears after [`SEARCH_SPINNER_AFTER`].
struct ProgressDisplay {
    bar: Option<indicatif::ProgressBar>,
    /// On a terminal, not `--quiet`.
    allowed: bool,
    /// The input is too small for a reading bar.
    small: bool,
    /// The delayed spinner of the search: (finished, bar), under one lock so that the spinner
    /// never appears after `finish`.
    delayed: Option<std::sync::Arc<std::sync::Mutex<(bool, indicatif::ProgressBar)>>>,
}

/// Below this much input, no bar: it would flash and vanish.
const PROGRESS_MIN_BYTES: u64 = 8 << 20;
const PROGRESS_MIN_FILES: usize = 50;
/// A search still running after this long gets a spinner.
const SEARCH_SPINNER_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl ProgressDisplay {
    fn new(quiet: bool) -> ProgressDisplay {
        ProgressDisplay {
            bar: None,
            allowed: !quiet && std::io::stderr().is_terminal(),
            small: false,
            delayed: None,
        }
    }

    fn spinner_style() -> indicatif::ProgressStyle {
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .expect("a valid template")
    }

    fn update(&mut self, p: Progress<'_>) {
        if !self.allowed {
            return;
        }
        match p {
            Progress::Reading {
                file,
                index,
                files,
                bytes_done,
                bytes_total,
            } => {
                if self.small {
                    return;
                }
                if self.bar.is_none() {
                    if bytes_total < PROGRESS_MIN_BYTES && files < PROGRESS_MIN_FILES {
                        self.small = true;
                        return;
                    }
                    let bar = indicatif::ProgressBar::with_draw_target(
                        Some(bytes_total),
                        indicatif::ProgressDrawTarget::stderr(),
                    );
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{spinner} reading {bar:30} {bytes}/{total_bytes} {msg}",
                        )
                        .expect("a valid template"),
                    );
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    self.bar = Some(bar);
                }
                if let Some(bar) = &self.bar {
                    bar.set_position(bytes_done);
                    let name = file
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    bar.set_message(format!("(trace {} of {files}: {name})", index + 1));
                }
            }
            Progress::Analyzing => {
                if let Some(bar) = &self.bar {
                    bar.set_style(Self::spinner_style());
                    bar.set_message("searching for lock-order cycles");
                    return;
                }
                // Short reading: a spinner only if the search turns out long.
                let bar = indicatif::ProgressBar::with_draw_target(
                    None,
                    indicatif::ProgressDrawTarget::hidden(),
                );
                bar.set_style(Self::spinner_style());
                bar.set_message("searching for lock-order cycles");
                let shared = std::sync::Arc::new(std::sync::Mutex::new((false, bar)));
                let for_thread = std::sync::Arc::clone(&shared);
                std::thread::spawn(move || {
                    std::thread::sleep(SEARCH_SPINNER_AFTER);
                    let guard = for_thread.lock().unwrap_or_else(|e| e.into_inner());
                    if !guard.0 {
                        guard
                            .1
                            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
                        guard
                            .1
                            .enable_steady_tick(std::time::Duration::from_millis(120));
                    }
                });
                self.delayed = Some(shared);
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(shared) = &self.delayed {
            let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
            guard.0 = true;
            guard.1.finish_and_clear();
        }
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Exit code 2: bad input or usage (also what clap uses for a usage error).
const EXIT_BAD_INPUT: u8 = lockcheck_analyze::report::EXIT_BAD_INPUT;

/// The exit code of an analysis that read its input (see [`lockcheck_analyze::report::exit_code`]:
/// 1 violations, 3 incomplete unless `allow_incomplete`, else 0). `run` uses it too.
fn report_exit_code(report: &Report, allow_incomplete: bool) -> u8 {
    lockcheck_analyze::report::exit_code(report, allow_incomplete)
}

/// The analysis options from the flags (reads `lockcheck.toml` and the baseline).
fn load_options(
    a: &AnalysisArgs,
    input_format: Option<InputFormatArg>,
    allow_truncated: bool,
) -> Result<Options, String> {
    let config = match (&a.config, a.no_config) {
        (Some(path), _) => Config::load(path).map_err(|e| e.to_string())?,
        (None, false) if Path::new("lockcheck.toml").is_file() => {
            Config::load(Path::new("lockcheck.toml")).map_err(|e| e.to_string())?
        }
        _ => Config::default(),
    };
    let baseline = match &a.baseline {
        Some(path) => Some(Baseline::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(Options {
        levels: match a.level {
            LevelArg::Instance => Levels::Instance,
            LevelArg::Class => Levels::Class,
            LevelArg::Both => Levels::Both,
        },
        limits: SearchLimits {
            max_cycles: a.max_cycles,
            max_steps: a.max_steps,
            max_total_steps: a.max_total_steps,
            max_filtered_steps: a.max_filtered_steps,
            max_listed: a.max_listed,
            max_examples: a.max_examples,
            max_example_steps: a.max_example_steps,
        },
        input_format: input_format.map(|f| match f {
            InputFormatArg::Json => InputFormat::Json,
            InputFormatArg::Std => InputFormat::Std,
            InputFormatArg::RapidBin => InputFormat::RapidBin,
            InputFormatArg::Lct => InputFormat::Lct,
        }),
        allow_truncated,
        config,
        baseline,
        skip_graph: false,
        lost_wakeups: a.condvar,
    })
}

/// Reads and analyzes `paths`, with a progress bar on a terminal.
fn analyze_paths(paths: &[PathBuf], opts: &Options, a: &AnalysisArgs) -> Result<Analysis, String> {
    let started = std::time::Instant::now();
    let mut progress = ProgressDisplay::new(a.quiet);
    let result = analyze_with(paths, opts, &mut |p| progress.update(p));
    progress.finish();
    if a.verbose {
        eprintln!(
            "lockcheck: analyzed in {:.2} s, peak memory {}",
            started.elapsed().as_secs_f64(),
            lockcheck_analyze::peak_rss().unwrap_or_else(|| "unknown".into())
        );
    }
    result.map_err(|e| e.to_string())
}

/// The directory source paths are shown relative to (SARIF, HTML).
fn repo_root(a: &AnalysisArgs) -> Option<PathBuf> {
    a.repo_root
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
}

/// The report in `format`. `color_ok`: text may be colored under `--color auto` (it goes to a
/// terminal).
fn render(
    format: Format,
    analysis: &Analysis,
    a: &AnalysisArgs,
    with_baseline: bool,
    color_ok: bool,
) -> String {
    let report = &analysis.report;
    match format {
        Format::Json => {
            let mut s =
                lockcheck_analyze::report::to_json_pretty(report).expect("the report serializes");
            s.push('\n');
            s
        }
        Format::Sarif => {
            let log = to_sarif(
                report,
                &SarifOptions {
                    repo_root: repo_root(a),
                    with_baseline,
                },
            );
            let mut s =
                lockcheck_analyze::report::to_json_pretty(&log).expect("the SARIF log serializes");
            s.push('\n');
            s
        }
        Format::Dot => analysis.graph.to_dot(),
        Format::Html => lockcheck_analyze::html::render_html_with(
            report,
            &analysis.graph,
            &lockcheck_analyze::html::HtmlOptions {
                repo_root: repo_root(a),
            },
        ),
        Format::Text => {
            let color = text_color(a, color_ok);
            if a.quiet {
                render_violations(report, color)
            } else {
                render_text(
                    report,
                    TextOptions {
                        verbose: a.verbose,
                        color,
                    },
                )
            }
        }
    }
}

/// Writes `value` as pretty JSON and a line break to `path`, or to stdout without one, as it
/// is serialized (the same bytes as [`render`]'s, without the report held in memory first); a
/// closed pipe (`| head`) is not a failure of the analysis.
/// Whether the text report is colored: `--color`, else when it goes to a terminal (`color_ok`:
/// not to a file) and `NO_COLOR` is unset.
fn text_color(a: &AnalysisArgs, color_ok: bool) -> bool {
    match a.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => {
            color_ok
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// The text report (what `render` makes of [`Format::Text`]) written to `path` or stdout as it
/// is made: tens of thousands of violations are tens of megabytes of text, not held whole.
fn write_text_report(report: &Report, a: &AnalysisArgs, path: Option<&Path>) -> Result<(), String> {
    let color = text_color(a, path.is_none());
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        if a.quiet {
            lockcheck_analyze::report::write_violations(&mut out, report, color)?;
        } else {
            let opts = TextOptions {
                verbose: a.verbose,
                color,
            };
            lockcheck_analyze::report::write_text(&mut out, report, opts)?;
        }
        out.flush()
    };
    match path {
        Some(path) => std::fs::File::create(path)
            .and_then(|mut f| write(&mut f))
            .map_err(|e| format!("{}: {e}", path.display())),
        None => match write(&mut std::io::stdout().lock()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
            _ => Ok(()),
        },
    }
}

fn write_json<T: serde::Serialize + ?Sized>(value: &T, path: Option<&Path>) -> Result<(), String> {
    fn write(out: impl Write, value: &(impl serde::Serialize + ?Sized)) -> std::io::Result<()> {
        // Large pieces: each write to stdout is a system call.
        let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
        lockcheck_analyze::report::write_json_pretty(&mut out, value)?;
        out.write_all(b"\n")?;
        out.flush()
    }
    match path {
        Some(path) => std::fs::File::create(path)
            .and_then(|f| write(f, value))
            .map_err(|e| format!("{}: {e}", path.display())),
        None => match write(std::io::stdout().lock(), value) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
            _ => Ok(()),
        },
    }
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not a failure of the analysis.
fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn run_analyze(args: AnalyzeArgs) -> ExitCode {
    // An output that is one of the traces would replace the trace with a report (or, named in a
    // glob with last run's report, have been read as a trace): refused before anything is read.
    let outputs = [
        &args.output,
        &args.write_baseline,
        &args.hierarchy_rust,
        &args.timeouts_toml,
    ];
    // The traces as read: a directory's (last run's report written among the traces would be
    // read as one, then replaced), listed once for this test and the analysis. Where they cannot
    // be listed, the analysis lists them again and says why.
    let traces = lockcheck_analyze::read::expand_inputs(&args.traces)
        .unwrap_or_else(|_| args.traces.clone());
    for out in outputs.into_iter().flatten() {
        if traces.iter().any(|t| same_file(t, out)) {
            return fail(format!(
                "{}: this output is also one of the traces to analyze; writing it would replace \
                 the trace (name another file)",
                out.display()
            ));
        }
    }
    let mut opts = match load_options(&args.common, args.input_format, args.allow_truncated) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    opts.skip_graph = !matches!(args.format, Format::Dot | Format::Html);
    let mut analysis = match analyze_paths(&traces, &opts, &args.common) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    if let Some(path) = &args.write_baseline {
        let report = &mut analysis.report;
        let b = Baseline::from_report(report);
        if let Err(e) = write_file(path, &b.to_json()) {
            return fail(e);
        }
        // Every current finding is now accepted: report them as such.
        for v in &mut report.violations {
            v.baselined = true;
        }
        report.summary.baselined = report.violations.len() as u64;
    }
    let with_baseline = args.common.baseline.is_some() || args.write_baseline.is_some();
    let report = &analysis.report;
    // The side files first, then the report: a report is never written when they fail (as
    // when the report was rendered first, its writing nothing but the last step).
    if let Some(path) = &args.hierarchy_rust {
        if let Err(e) = write_file(path, &report.hierarchy.rust) {
            return fail(e);
        }
    }
    if let Some(path) = &args.timeouts_toml {
        let toml = lockcheck_analyze::timeouts::to_toml(&report.timeouts, report.summary.traces);
        if let Err(e) = write_file(path, &toml) {
            return fail(e);
        }
    }
    // JSON and SARIF are written as they are serialized, the others rendered, then written.
    let written = match args.format {
        Format::Json => write_json(report, args.output.as_deref()),
        Format::Sarif => {
            let log = to_sarif(
                report,
                &SarifOptions {
                    repo_root: repo_root(&args.common),
                    with_baseline,
                },
            );
            write_json(&log, args.output.as_deref())
        }
        Format::Text => write_text_report(report, &args.common, args.output.as_deref()),
        _ => {
            let text = render(
                args.format,
                &analysis,
                &args.common,
                with_baseline,
                args.output.is_none(),
            );
            match &args.output {
                Some(path) => write_file(path, &text),
                None => write_stdout(&text),
            }
        }
    };
    if let Err(e) = written {
        return fail(e);
    }
    if args.output.is_some() && !args.common.quiet {
        // The summary still goes to the terminal.
        eprintln!("{}", summary_line(report));
    }
    lockcheck_analyze::phase("output");
    let code = ExitCode::from(report_exit_code(report, args.common.allow_incomplete));
    // The process ends with this command: the analysis is left to the exit, not freed piece by
    // piece (on the hostile random trace its drop, millions of small strings and vectors of
    // the report, was 267M instructions, 2 % of the run). Only on success: the error paths
    // above return early and drop it as before.
    std::mem::forget(analysis);
    code
}

fn run_explain(rule: Option<String>) -> ExitCode {
    let text = match rule {
        None => rules::list(),
        Some(name) => match rules::lookup(&name) {
            Some(r) => rules::explain(r),
            None => {
                return fail(format_args!(
                    "no rule, filter or flag named `{name}`; `lockcheck explain` lists them"
                ))
            }
        },
    };
    print_stdout(text.as_bytes())
}

fn print_stdout(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => fail(e),
        _ => ExitCode::SUCCESS,
    }
}

fn run_man(command: Option<String>) -> ExitCode {
    let cmd = Cli::command();
    let page = match command {
        None => cmd,
        Some(name) => match cmd.find_subcommand(&name) {
            Some(sub) => {
                // clap wants a `'static` name (without its `string` feature); the process
                // prints one page and exits.
                let full: &'static str =
                    Box::leak(format!("lockcheck-{}", sub.get_name()).into_boxed_str());
                sub.clone().name(full)
            }
            None => return fail(format_args!("no subcommand `{name}`")),
        },
    };
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut buf) {
        return fail(e);
    }
    print_stdout(&buf)
}

/// Large allocations (128 KiB and more) are mapped and unmapped on their own, at a fixed
/// threshold, on glibc.
///
/// glibc starts at that threshold but raises it each time a mapped block is freed (up to 32 MiB),
/// so whether a vector of a few megabytes lives in the heap or in a mapping of its own depends on
/// what was freed before, and on which thread freed it (the reading threads hand their batches to
/// the replay): on the hostile random trace the same binary peaked at 235 MB in most runs and at
/// 251.6 to 251.9 MB in 5 of 23: 16 MB more from the class graph's build on, kept to the end
/// (benchmarks history, "Hostile round 14"), never with the threshold fixed. A threshold set once
/// turns that off: every large block is its own mapping, given back when freed, and a vector
/// that grows is moved by `mremap` instead of copied. glibc's own starting value is kept: 1 MiB
/// also made the peak steady but raised it on small traces (26 to 30 MB on the planted 500k one).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_malloc_threshold() {
    // SAFETY: `mallopt` only sets a parameter of the allocator, called before any thread of
    // this process is started; a failure (return value 0) leaves glibc's default behaviour.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_malloc_threshold() {}

fn main() -> ExitCode {
    fix_malloc_threshold();
    let cli = Cli::parse();
    match cli.command {
        Command::Analyze(args) => run_analyze(args),
        Command::Run(args) => run::run(args),
        Command::Explain { rule } => run_explain(rule),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "lockcheck", &mut buf);
            print_stdout(&buf)
        }
        Command::Man { command } => run_man(command),
        Command::Convert {
            input,
            output,
            input_format,
            to,
            allow_truncated,
        } => run_convert(&input, &output, input_format, to, allow_truncated),
    }
}

fn input_format(f: InputFormatArg) -> InputFormat {
    match f {
        InputFormatArg::Json => InputFormat::Json,
        InputFormatArg::Std => InputFormat::Std,
        InputFormatArg::RapidBin => InputFormat::RapidBin,
        InputFormatArg::Lct => InputFormat::Lct,
    }
}

/// The format `convert` writes to `output` when `--to` is not given: `.lct` for a `.lct` name,
/// JSON Lines for any other, but an error for a name of a format `convert` does not write (RAPID's
/// `.std` and `.data`): JSON Lines under such a name would be read back as JSON (by its content)
/// but mislead every other tool and reader of the name.
fn convert_target(output: &Path) -> Result<ConvertTo, String> {
    let ext = output
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("lct") => Ok(ConvertTo::Lct),
        Some(e @ ("std" | "data")) => Err(format!(
            "{}: convert writes JSON Lines or .lct, not RAPID's .{e} format; pass `--to json` \
             to write JSON Lines under this name anyway",
            output.display()
        )),
        _ => Ok(ConvertTo::Json),
    }
}

/// Whether `a` and `b` name one existing file (through another spelling of its path, a symbolic
/// link or, on Unix, a hard link). Written here rather than taken from the `same-file` crate:
/// the test is these few lines.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
    }
}

fn run_convert(
    input: &Path,
    output: &Path,
    format: Option<InputFormatArg>,
    to: Option<ConvertTo>,
    allow_truncated: bool,
) -> ExitCode {
    use lockcheck_analyze::read::TraceReader;
    let to = match to.map_or_else(|| convert_target(output), Ok) {
        Ok(to) => to,
        Err(e) => return fail(e),
    };
    // Checked before the output is created: creating it truncates it, and the trace with it.
    if same_file(input, output) {
        return fail(format!(
            "{}: the output is the input trace itself; writing it would destroy the trace \
             before it is read (write to another file, then rename it)",
            output.display()
        ));
    }
    let reader = match TraceReader::open(input, format.map(input_format)) {
        Ok(r) => r.allow_truncated(allow_truncated),
        Err(e) => return fail(e),
    };
    let file = match std::fs::File::create(output) {
        Ok(f) => f,
        Err(e) => return fail(format!("{}: {e}", output.display())),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    if to == ConvertTo::Lct {
        buf.extend_from_slice(&lockcheck_core::lct::MAGIC);
    }
    let write_err = |e: std::io::Error| fail(format!("{}: {e}", output.display()));
    for ev in reader {
        let ev = match ev {
            Ok(e) => e,
            Err(e) => return fail(e),
        };
        match to {
            ConvertTo::Lct => lockcheck_core::lct::encode(&ev, &mut buf),
            ConvertTo::Json => ev.write_line(&mut buf),
        }
        if buf.len() >= 1 << 16 {
            if let Err(e) = out.write_all(&buf) {
                return write_err(e);
            }
            buf.clear();
        }
    }
    if let Err(e) = out.write_all(&buf).and_then(|_| out.flush()) {
        return write_err(e);
    }
    ExitCode::SUCCESS
}
