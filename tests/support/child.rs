//! Runs one test of the current test binary in a child process, for scenarios whose stderr
//! (lockcheck's reports and notices, written with one `write(2)` past the test harness's
//! capture) or whose process-wide settings must be observed from outside.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs the test `name` of this binary alone (`--exact --nocapture --test-threads=1`) in a child
/// process with `marker=name` and `env` set, stdout discarded, and returns its exit status and
/// stderr. The status is `None` when the child ran past [`super::WATCHDOG_FLOOR_SECS`] and was
/// killed. The child tells it is the child by [`is_child`].
pub fn run_test(name: &str, marker: &str, env: &[(&str, &str)]) -> (Option<ExitStatus>, String) {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(marker, name)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut c = c.spawn().unwrap();
    let mut err = c.stderr.take().unwrap();
    // Read while the child runs: a child that fills the pipe would otherwise block on it.
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = c.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(super::WATCHDOG_FLOOR_SECS) {
            let _ = c.kill();
            let _ = c.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap())
}

/// Whether this process is the child [`run_test`] started for the test `name`.
pub fn is_child(marker: &str, name: &str) -> bool {
    std::env::var(marker).as_deref() == Ok(name)
}
