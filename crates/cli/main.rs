//! `lockcheck`: the command line of lockcheck's offline analyzer.
//!
//! `lockcheck analyze [OPTIONS] <TRACE>...` reads traces, reports lock-order violations, a suggested
//! lock hierarchy and timeouts. Exit codes: 0 no violation, 1 violations found, 2 bad input or
//! usage. `lockcheck run [OPTIONS] -- <COMMAND>...` runs a command (a test suite) with recording on
//! and analyzes what it recorded (see `run.rs`). `lockcheck explain`, `completions` and `man` print
//! help. All logic lives in `lockcheck-analyze`; this file parses arguments, picks the output, and
//! maps results to exit codes in one place ([`report_exit_code`]).

mod run;

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

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay traces and report lock-order violations, a lock hierarchy and timeouts.
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
    /// Stop the cycle search of a component after this many candidates.
    #[arg(long, default_value_t = 10_000)]
    max_cycles: u64,
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
const EXIT_BAD_INPUT: u8 = 2;

/// The exit code of an analysis that read its input: 1 when a violation not in the baseline was
/// found, else 0. The one place that maps a report to an exit code; `run` uses it too.
fn report_exit_code(report: &Report) -> u8 {
    if report.has_violations() {
        1
    } else {
        0
    }
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
            ..SearchLimits::default()
        },
        input_format: input_format.map(|f| match f {
            InputFormatArg::Json => InputFormat::Json,
            InputFormatArg::Std => InputFormat::Std,
            InputFormatArg::RapidBin => InputFormat::RapidBin,
        }),
        allow_truncated,
        config,
        baseline,
    })
}

/// Reads and analyzes `paths`, with a progress bar on a terminal.
fn analyze_paths(paths: &[PathBuf], opts: &Options, quiet: bool) -> Result<Analysis, String> {
    let mut progress = ProgressDisplay::new(quiet);
    let result = analyze_with(paths, opts, &mut |p| progress.update(p));
    progress.finish();
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
            let mut s = serde_json::to_string_pretty(report).expect("the report serializes");
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
            let mut s = serde_json::to_string_pretty(&log).expect("the SARIF log serializes");
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
            let color = match a.color {
                ColorArg::Always => true,
                ColorArg::Never => false,
                ColorArg::Auto => {
                    color_ok
                        && std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }
            };
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

/// Writes `text` to stdout; a closed pipe (`| head`) is not a failure of the analysis.
fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

fn run_analyze(args: AnalyzeArgs) -> ExitCode {
    let opts = match load_options(&args.common, args.input_format, args.allow_truncated) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let mut analysis = match analyze_paths(&args.traces, &opts, args.common.quiet) {
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
    let text = render(
        args.format,
        &analysis,
        &args.common,
        with_baseline,
        args.output.is_none(),
    );
    let report = &analysis.report;
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
    match &args.output {
        Some(path) => {
            if let Err(e) = write_file(path, &text) {
                return fail(e);
            }
            if !args.common.quiet {
                // The summary still goes to the terminal.
                eprintln!("{}", summary_line(report));
            }
        }
        None => {
            if let Err(e) = write_stdout(&text) {
                return fail(e);
            }
        }
    }
    ExitCode::from(report_exit_code(report))
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

fn main() -> ExitCode {
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
    }
}
