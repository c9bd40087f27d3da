//! `lockcheck run [OPTIONS] -- <COMMAND>...`: the CI gate in one command.
//!
//! Runs the command (`cargo test`, `cargo nextest run`, a test binary) with recording switched on
//! for every process it starts: `LOCKCHECK_TRACE=<fresh dir>/{pid}.json` (absolute, because cargo
//! runs each test binary in its own package's directory), and `LOCKCHECK=warn` unless the user set
//! `LOCKCHECK` (an inversion seen inside one process is printed there but does not fail that test:
//! the analysis below gates everything at once). Its output is inherited; then every trace it wrote
//! is analyzed by the same code as `lockcheck analyze` and the report printed.
//!
//! Signals (Unix): the command runs in its own process group, which is handed the terminal while it
//! runs, so a Ctrl-C reaches the command and all its processes exactly as without lockcheck.
//! SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to lockcheck itself (a CI runner cancelling the job) are
//! forwarded to that whole group; when the command was interrupted, what it left in its group gets
//! SIGTERM, so no test process is left orphaned.

use crate::{
    analyze_paths, load_options, render, report_exit_code, write_file, write_stdout, AnalysisArgs,
    Format, EXIT_BAD_INPUT,
};
use lockcheck_analyze::report::summary_line;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

/// Exit code when the command succeeded but no process wrote a lock event: the gate checked
/// nothing. (Distinct from `analyze`'s codes 0 to 3.)
pub(crate) const EXIT_NO_TRACE: u8 = 4;

/// The exit code table, in `lockcheck run --help` (and docs/ci.md).
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  the command succeeded and the analysis found no violation (findings in the
     baseline or suppressed by lockcheck.toml do not count)
  1  the command succeeded and the analysis found a violation not in the baseline
  2  bad usage or configuration, the command could not be started, or a trace
     could not be read
  3  the command succeeded and found no violation, but a search limit was hit, so
     one may be missing (the warning names the limit and its flag;
     --allow-incomplete: 0)
  4  the command succeeded but no process recorded a lock event (the command
     does not use lockcheck, or its instrumentation is compiled out: release
     builds need lockcheck's `instrument` feature)
  N  the command failed: its own exit code (128 + the signal number if a signal
     killed it); the traces it wrote are still analyzed and reported

Example:
  lockcheck run --sarif lockcheck.sarif --html lockcheck.html -- cargo test --workspace";

/// Arguments of `lockcheck run`.
#[derive(clap::Args, Debug)]
pub(crate) struct RunArgs {
    /// Also write the report as SARIF 2.1.0 to this file (for code scanning).
    #[arg(long, value_name = "FILE")]
    sarif: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Record into this directory and keep the traces (it must be empty or absent: old traces
    /// would be merged). Default: a fresh temporary directory, removed after the analysis.
    #[arg(long, value_name = "DIR", alias = "keep-traces")]
    trace_dir: Option<PathBuf>,
    #[command(flatten)]
    common: AnalysisArgs,
    /// The command to run and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<OsString>,
}

/// Where the traces go, and whether to remove them afterwards.
struct TraceDir {
    path: PathBuf,
    keep: bool,
}

impl TraceDir {
    fn create(requested: Option<&Path>) -> Result<TraceDir, String> {
        let (path, keep) = match requested {
            Some(dir) => {
                if dir.exists() {
                    let mut entries =
                        std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    if entries.next().is_some() {
                        return Err(format!(
                            "{}: the trace directory is not empty (its traces would be merged \
                             into this run's); remove it or pick another",
                            dir.display()
                        ));
                    }
                } else {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                (dir.to_path_buf(), true)
            }
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let base = std::env::temp_dir();
                // `create_dir` (not `_all`) fails on an existing directory: the name is fresh.
                let mut attempt = 0u32;
                loop {
                    let dir = base.join(format!(
                        "lockcheck-run-{}-{nanos:08x}-{attempt}",
                        std::process::id()
                    ));
                    match std::fs::create_dir(&dir) {
                        Ok(()) => break (dir, false),
                        Err(e)
                            if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 =>
                        {
                            attempt += 1
                        }
                        Err(e) => return Err(format!("{}: {e}", dir.display())),
                    }
                }
            }
        };
        // Absolute: cargo runs each test binary in its own package's directory.
        let path = std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TraceDir { path, keep })
    }

    /// The trace files written (any name the analyzer reads), sorted.
    fn traces(&self) -> Vec<PathBuf> {
        lockcheck_analyze::read::expand_inputs(std::slice::from_ref(&self.path)).unwrap_or_default()
    }

    fn remove(&self) {
        if !self.keep {
            std::fs::remove_dir_all(&self.path).ok();
        }
    }
}

/// How the command ended, for messages and the exit code.
fn describe(status: &ExitStatus) -> (String, u8) {
    if let Some(code) = status.code() {
        return (format!("exited with {code}"), code.clamp(0, 255) as u8);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return (
                format!("was killed by signal {sig}"),
                (128 + sig).clamp(0, 255) as u8,
            );
        }
    }
    ("ended without an exit code".into(), 1)
}

fn shell_words(cmd: &[OsString]) -> String {
    cmd.iter()
        .map(|a| {
            let s = a.to_string_lossy();
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn error(msg: impl std::fmt::Display) {
    eprintln!("lockcheck: error: {msg}");
}

/// `lockcheck run`.
pub(crate) fn run(args: RunArgs) -> ExitCode {
    // A bad configuration or baseline fails before the (long) command runs. Traces cut short are
    // accepted: a test killed by a timeout is the command's failure, and what it recorded up to
    // then is still worth analyzing (the report says which traces were cut).
    let opts = match load_options(&args.common, None, true) {
        Ok(o) => o,
        Err(e) => {
            error(e);
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let dir = match TraceDir::create(args.trace_dir.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            error(e);
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let shown = shell_words(&args.command);
    let quiet = args.common.quiet;
    if std::env::var_os("LOCKCHECK_TRACE").is_some() && !quiet {
        eprintln!("lockcheck run: LOCKCHECK_TRACE is set; it is replaced for the command");
    }
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .env("LOCKCHECK_TRACE", dir.path.join("{pid}.json"));
    if std::env::var_os("LOCKCHECK").is_none() {
        cmd.env("LOCKCHECK", "warn");
    }
    let status = match signals::run(&mut cmd) {
        Ok(s) => s,
        Err(e) => {
            error(format_args!("cannot run `{shown}`: {e}"));
            dir.remove();
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let (how, command_code) = describe(&status);
    let failed = !status.success();
    // The command's failure wins; else the analysis decides.
    let finish = |analysis_code: u8| -> ExitCode {
        let code = if failed { command_code } else { analysis_code };
        if !quiet {
            let why = match (failed, analysis_code) {
                (true, _) => "the command failed",
                (false, 0) => "clean",
                (false, 1) => "violations",
                (false, EXIT_NO_TRACE) => "nothing recorded",
                (false, EXIT_BAD_INPUT) => "the analysis failed",
                (false, _) => "the analysis' code",
            };
            eprintln!("lockcheck run: exit code {code} ({why})");
        }
        ExitCode::from(code)
    };

    let traces = dir.traces();
    if traces.is_empty() {
        eprintln!(
            "lockcheck: error: `{shown}` {how} and wrote NO lock trace: nothing was checked.\n\
             \x20 {}Does it use lockcheck's locks? Is lockcheck's instrumentation compiled in? (It is\n\
             \x20 in builds with debug assertions; release builds need lockcheck's `instrument`\n\
             \x20 feature; `no-instrument` turns it off.)",
            if failed {
                "It failed, maybe before running anything that locks (a build error?).\n  "
            } else {
                ""
            }
        );
        dir.remove();
        return finish(EXIT_NO_TRACE);
    }
    if !quiet {
        let bytes: u64 = traces
            .iter()
            .filter_map(|t| std::fs::metadata(t).ok())
            .map(|m| m.len())
            .sum();
        eprintln!(
            "lockcheck run: `{shown}` {how}; analyzing {} trace{} ({bytes} bytes){}",
            traces.len(),
            if traces.len() == 1 { "" } else { "s" },
            if dir.keep {
                format!(" in {}", dir.path.display())
            } else {
                String::new()
            }
        );
    }
    let analysis = match analyze_paths(std::slice::from_ref(&dir.path), &opts, &args.common) {
        Ok(a) => a,
        Err(e) => {
            error(e);
            eprintln!(
                "lockcheck run: the traces are kept in {} for a look",
                dir.path.display()
            );
            return finish(EXIT_BAD_INPUT);
        }
    };
    dir.remove();
    let with_baseline = args.common.baseline.is_some();
    for (path, format) in [
        (&args.sarif, Format::Sarif),
        (&args.html, Format::Html),
        (&args.json, Format::Json),
    ] {
        if let Some(path) = path {
            let text = render(format, &analysis, &args.common, with_baseline, false);
            if let Err(e) = write_file(path, &text) {
                error(e);
                return finish(EXIT_BAD_INPUT);
            }
        }
    }
    let text = render(Format::Text, &analysis, &args.common, with_baseline, true);
    if let Err(e) = write_stdout(&text) {
        error(e);
        return finish(EXIT_BAD_INPUT);
    }
    let report = &analysis.report;
    if report.summary.events == 0 {
        eprintln!(
            "lockcheck: error: `{shown}` wrote {} trace{} but NO lock event: nothing was checked.\n\
             \x20 lockcheck's instrumentation is probably compiled out (release build without the\n\
             \x20 `instrument` feature, or the `no-instrument` feature).",
            report.summary.traces,
            if report.summary.traces == 1 { "" } else { "s" }
        );
        return finish(EXIT_NO_TRACE);
    }
    if quiet && report.has_violations() {
        // `--quiet` prints the findings only; the gate's verdict still needs one line.
        eprintln!("{}", summary_line(report));
    }
    finish(report_exit_code(report, args.common.allow_incomplete))
}

/// Running the command with signals forwarded.
#[cfg(unix)]
mod signals {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, ExitStatus};
    use std::sync::atomic::{AtomicI32, Ordering};

    /// The command's process group while it runs (0: none yet).
    static GROUP: AtomicI32 = AtomicI32::new(0);
    /// A signal received before the group existed, to forward once it does.
    static PENDING: AtomicI32 = AtomicI32::new(0);

    const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

    /// Whether a signal was forwarded to the command.
    static FORWARDED_ANY: AtomicI32 = AtomicI32::new(0);

    /// Waits for the command's exit without reaping it (its pid, the group's id, stays taken, so
    /// the group cannot be confused with a new one); if it was interrupted (a signal forwarded by
    /// lockcheck, or a Ctrl-C that killed it), sends SIGTERM (and SIGCONT, for a stopped one) to
    /// what it left behind in its group: a test process started in the background (shells
    /// ignore SIGINT in those) must not outlive the run.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn end_leftovers(group: libc::pid_t) {
        // SAFETY: waitid on our own child with WNOWAIT, then kill(2) on its group.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            loop {
                let r = libc::waitid(
                    libc::P_PID,
                    group as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                );
                if r == 0 {
                    break;
                }
                if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                    return;
                }
            }
            let killed = info.si_code != libc::CLD_EXITED && FORWARDED.contains(&info.si_status());
            if killed || FORWARDED_ANY.load(Ordering::SeqCst) != 0 {
                libc::kill(-group, libc::SIGTERM);
                libc::kill(-group, libc::SIGCONT);
            }
        }
    }

    /// Elsewhere: the plain wait (the group's leftovers are not looked after).
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn end_leftovers(_group: libc::pid_t) {}

    extern "C" fn forward(sig: libc::c_int) {
        // Only async-signal-safe calls here: atomics and kill(2).
        let mut group = GROUP.load(Ordering::SeqCst);
        if group <= 0 {
            PENDING.store(sig, Ordering::SeqCst);
            // The group may have been published meanwhile, after `run` looked at PENDING.
            group = GROUP.load(Ordering::SeqCst);
            if group <= 0 || PENDING.swap(0, Ordering::SeqCst) == 0 {
                return;
            }
        }
        FORWARDED_ANY.store(sig, Ordering::SeqCst);
        // SAFETY: kill(2) is async-signal-safe; a negative pid names the process group.
        unsafe { libc::kill(-group, sig) };
    }

    /// Whether stdin is a terminal whose foreground process group is `group`.
    ///
    /// # Safety
    /// Async-signal-safe calls only (it also runs in the child between fork and exec).
    unsafe fn owns_terminal(group: libc::pid_t) -> bool {
        libc::isatty(0) == 1 && libc::tcgetpgrp(0) == group
    }

    /// Makes `group` the terminal's foreground process group. SIGTTOU is ignored around the
    /// call: a process outside the foreground group may not change it otherwise.
    ///
    /// # Safety
    /// Async-signal-safe calls only (it also runs in the child between fork and exec).
    unsafe fn give_terminal(group: libc::pid_t) {
        let old = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::tcsetpgrp(0, group);
        libc::signal(libc::SIGTTOU, old);
    }

    /// Runs `cmd` in its own process group, in the terminal's foreground while it runs (when
    /// lockcheck had it), with the signals sent to lockcheck forwarded to that group, and waits
    /// for it.
    pub(super) fn run(cmd: &mut Command) -> std::io::Result<ExitStatus> {
        // SAFETY (every block below): plain libc calls on our own process and terminal, and a
        // handler that only touches atomics and calls kill(2).
        let ours = unsafe { libc::getpgrp() };
        let had_terminal = unsafe { owns_terminal(ours) };
        let mut old: Vec<(libc::c_int, libc::sigaction)> = Vec::new();
        for sig in FORWARDED {
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &sa, &mut prev) == 0 {
                    old.push((sig, prev));
                }
            }
        }
        cmd.process_group(0);
        if had_terminal {
            // SAFETY: runs between fork and exec, async-signal-safe calls only. The child takes
            // the terminal itself before exec, so that it can never read it while still in the
            // background (and be stopped by SIGTTIN); the parent does the same after spawn:
            // whichever runs first wins, the other is a no-op.
            unsafe {
                cmd.pre_exec(move || {
                    if owns_terminal(ours) {
                        give_terminal(libc::getpid());
                    }
                    Ok(())
                });
            }
        }
        let result = cmd.spawn().and_then(|mut child| {
            let group = child.id() as libc::pid_t;
            GROUP.store(group, Ordering::SeqCst);
            if had_terminal {
                unsafe {
                    if owns_terminal(ours) {
                        give_terminal(group);
                    }
                }
            }
            let pending = PENDING.swap(0, Ordering::SeqCst);
            if pending != 0 {
                FORWARDED_ANY.store(pending, Ordering::SeqCst);
                unsafe { libc::kill(-group, pending) };
            }
            end_leftovers(group);
            child.wait()
        });
        GROUP.store(0, Ordering::SeqCst);
        // Back to the foreground, then the default signal behavior: a Ctrl-C during the analysis
        // stops lockcheck.
        if had_terminal {
            unsafe { give_terminal(ours) };
        }
        for (sig, prev) in old {
            unsafe { libc::sigaction(sig, &prev, std::ptr::null_mut()) };
        }
        result
    }
}

/// Running the command: elsewhere, the console delivers Ctrl-C to the whole process tree.
#[cfg(not(unix))]
mod signals {
    use std::process::{Command, ExitStatus};

    pub(super) fn run(cmd: &mut Command) -> std::io::Result<ExitStatus> {
        cmd.status()
    }
}
