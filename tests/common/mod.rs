//! Helpers shared by the `lockcheck analyze` integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A path under the repository root.
pub fn root(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A fixture of `fixtures/json/analyze/`.
pub fn fixture(name: &str) -> PathBuf {
    root("fixtures/json/analyze").join(name)
}

/// A corpus trace: the copy under `fixtures/` if present, else `../shared/corpus/`.
pub fn corpus(kind: &str, name: &str) -> PathBuf {
    let local = root(&format!("fixtures/{kind}/{name}"));
    if local.exists() {
        local
    } else {
        root(&format!("../shared/corpus/{kind}/{name}"))
    }
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// The standard output parsed as a JSON report.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `lockcheck` with `args`.
pub fn lockcheck<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out: Output = Command::new(env!("CARGO_BIN_EXE_lockcheck"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("the lockcheck binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `lockcheck analyze --format json <extra...> <files...>` and returns the run.
pub fn analyze_json(files: &[PathBuf], extra: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> =
        vec!["analyze".into(), "--format".into(), "json".into()];
    args.extend(extra.iter().map(|s| s.into()));
    args.extend(files.iter().map(|f| f.clone().into_os_string()));
    lockcheck(args)
}

/// The filter names of a report's `filtered` entries.
pub fn filters(report: &serde_json::Value) -> Vec<String> {
    report["filtered"]
        .as_array()
        .expect("filtered is an array")
        .iter()
        .map(|f| {
            f["filter"]
                .as_str()
                .expect("filter is a string")
                .to_string()
        })
        .collect()
}

/// The number of violations of a report.
pub fn violations(report: &serde_json::Value) -> usize {
    report["violations"]
        .as_array()
        .expect("violations is an array")
        .len()
}
