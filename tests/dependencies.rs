//! The runtime crate stays light: what `lockcheck` adds to a user's dependency graph is held to an
//! allowlist, and a crate that depends on lockcheck type-checks as it would without it.
//!
//! Both run cargo itself with the workspace's lock file. The dependency tree covers every target
//! (`--target all`), so it needs crates a host build never fetched (redox's, windows'): cargo may
//! download them from the registry (`--locked`: the versions of the lock file, nothing resolved
//! anew). The type check builds for the host only, which the workspace's build has fetched, so it
//! runs offline.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root());
    c
}

/// Every crate `lockcheck` may bring into a user's normal (non-dev) dependencies, on any target,
/// and why. A new crate here is a decision: it is compiled in every user's build, release too.
const ALLOWED: &[(&str, &str)] = &[
    ("lockcheck", "the runtime itself"),
    (
        "lockcheck-core",
        "the shared model (no dependencies without its `serde` feature)",
    ),
    ("parking_lot", "the locks lockcheck instruments"),
    ("parking_lot_core", "parking_lot"),
    ("lock_api", "the guard API of parking_lot's types"),
    ("scopeguard", "lock_api"),
    ("smallvec", "parking_lot_core"),
    ("cfg-if", "parking_lot_core, backtrace"),
    (
        "libc",
        "parking_lot_core, backtrace (unix); lockcheck's cached unwinder (x86_64 Linux)",
    ),
    ("redox_syscall", "parking_lot_core (redox)"),
    ("bitflags", "redox_syscall"),
    ("windows-link", "parking_lot_core, backtrace (windows)"),
    ("backtrace", "acquisition backtraces in reports and traces"),
    ("addr2line", "backtrace"),
    (
        "gimli",
        "backtrace; lockcheck's cached unwinder (x86_64 Linux), same version and features",
    ),
    ("object", "backtrace"),
    ("memchr", "backtrace's object"),
    ("miniz_oxide", "backtrace (compressed debug info)"),
    ("adler2", "miniz_oxide"),
    ("rustc-demangle", "backtrace"),
    (
        "tracing",
        "reports as tracing events (default feature `tracing`)",
    ),
    ("tracing-core", "tracing"),
    ("once_cell", "tracing-core"),
    ("pin-project-lite", "tracing, tokio"),
    (
        "tokio",
        "feature `tokio` only: the async locks wrap tokio's (`sync`, `rt`)",
    ),
];

/// Crates that must never be there, whatever the allowlist says: they change how users' code
/// compiles (serde_json's `PartialEq<Value>` impls for integers) or weigh a lot for nothing.
const FORBIDDEN: &[&str] = &[
    "serde",
    "serde_json",
    "serde_core",
    "toml",
    "toml_edit",
    "syn",
    "proc-macro2",
];

fn normal_deps(extra: &[&str]) -> Vec<String> {
    let out = cargo()
        .args([
            "tree",
            "--locked",
            "-p",
            "lockcheck",
            "-e",
            "normal",
            "--target",
            "all",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .args(extra)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn runtime_dependencies_are_on_the_allowlist() {
    for extra in [&[][..], &["--no-default-features"], &["--all-features"]] {
        let names = normal_deps(extra);
        assert!(
            names.iter().any(|n| n == "parking_lot") && names.iter().any(|n| n == "lockcheck"),
            "cargo tree output not understood: {names:?}"
        );
        let forbidden: Vec<&String> = names
            .iter()
            .filter(|n| FORBIDDEN.contains(&n.as_str()))
            .collect();
        assert!(
            forbidden.is_empty(),
            "`lockcheck` {extra:?} brings {forbidden:?} into its users' dependency graph: these \
             change how user code compiles or weigh a lot. Keep them behind the analyzer (see \
             lockcheck-core's `serde` feature)."
        );
        let new: Vec<&String> = names
            .iter()
            .filter(|n| !ALLOWED.iter().any(|(a, _)| a == n))
            .collect();
        assert!(
            new.is_empty(),
            "`lockcheck` {extra:?} has new normal dependencies {new:?}. Every user compiles them \
             (release builds too). If one is really needed, add it to ALLOWED in {} with the reason.",
            file!()
        );
    }
}

/// Copies `fixtures/infer` into a scratch crate that depends on this workspace's lockcheck (with
/// its default features or without), with the workspace's lock file (so offline resolution finds
/// the same versions), and `cargo check`s it with `features`. Returns (success, stderr).
fn check_fixture(lockcheck_defaults: bool, features: &[&str]) -> (bool, String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("infer-fixture");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::copy(
        root().join("fixtures/infer/src/lib.rs"),
        dir.join("src/lib.rs"),
    )
    .unwrap();
    let lockcheck = root().join("crates/lockcheck");
    let manifest = format!(
        r#"[package]
name = "lockcheck-infer-fixture"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
lockcheck = {{ path = {path:?}, default-features = {lockcheck_defaults} }}
# Only to show that the check is sensitive: with serde_json in the graph, the fixture fails.
serde_json = {{ version = "1", optional = true }}

# A workspace of its own, not a member of lockcheck's.
[workspace]
"#,
        path = lockcheck.display().to_string()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let out = cargo()
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .args(["check", "--offline", "--quiet", "--lib"])
        .args(features)
        .output()
        .expect("cargo runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// rayon-core's tests stopped compiling with lockcheck's locks swapped in: serde_json in the graph
/// made `let sum = range.sum(); assert_eq!(value, sum)` ambiguous (E0283). A detector must not
/// change how its users' code type-checks.
#[test]
fn a_crate_using_lockcheck_type_checks_as_without_it() {
    let (ok, stderr) = check_fixture(true, &[]);
    assert!(
        ok,
        "fixtures/infer does not compile with lockcheck as a dependency:\n{stderr}"
    );
    // Without the default features (no `tracing`) too.
    let (ok, stderr) = check_fixture(false, &[]);
    assert!(
        ok,
        "fixtures/infer does not compile with lockcheck, default-features = false:\n{stderr}"
    );
    // The fixture really catches the problem: with serde_json in the graph it fails, with E0283.
    let (ok, stderr) = check_fixture(true, &["--features", "serde_json"]);
    assert!(
        !ok && stderr.contains("E0283"),
        "fixtures/infer should fail with E0283 when serde_json is in the graph:\n{stderr}"
    );
}
