//! `lockcheck analyze a b c` reads its trace files in parallel (issue 11): the output must be
//! byte for byte the same whatever the number of reading threads (`RAYON_NUM_THREADS`), for
//! every output format, and a bad file among good ones must give the same error and exit code.

#[path = "support/planted.rs"]
mod planted;

#[path = "support/scratch.rs"]
mod scratch;

use scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_lockcheck");

fn dir(tag: &str) -> Scratch {
    Scratch::new(&format!("parallel-{tag}"))
}

/// Planted traces in every format, with different seeds and sizes, so that the files have
/// inversions of their own and together.
fn write_traces(d: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (i, (format, ext, events)) in [
        (planted::Format::Std, "std", 12_000),
        (planted::Format::Jsonl, "jsonl", 8_000),
        (planted::Format::RapidBin, "data", 6_000),
        (planted::Format::Std, "std", 500),
        (planted::Format::Jsonl, "jsonl", 4_000),
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = planted::PlantedConfig {
            events,
            seed: i as u64 + 7,
            threads: 6,
            locks: 40,
            ..Default::default()
        };
        let path = d.join(format!("t{i}.{ext}"));
        let mut out = Vec::new();
        planted::write(&cfg, format, &mut out).unwrap();
        std::fs::write(&path, out).unwrap();
        files.push(path);
    }
    files
}

fn analyze(threads: usize, files: &[PathBuf], args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["analyze", "--no-config"])
        .args(args)
        .args(files)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .env_remove("LOCKCHECK_PHASES")
        .output()
        .unwrap()
}

#[test]
fn output_is_byte_identical_whatever_the_reading_threads() {
    let d = dir("same");
    let files = write_traces(&d);
    for args in [&["--format", "json"][..], &["--format", "sarif"], &[]] {
        let one = analyze(1, &files, args);
        assert!(
            matches!(one.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&one.stderr)
        );
        assert!(!one.stdout.is_empty());
        for threads in [2, 8] {
            let many = analyze(threads, &files, args);
            assert_eq!(
                many.status.code(),
                one.status.code(),
                "{args:?}, {threads} threads"
            );
            assert!(
                many.stdout == one.stdout,
                "{args:?}: output with {threads} reading threads differs from one thread"
            );
        }
    }
    let json = String::from_utf8(analyze(3, &files, &["--format", "json"]).stdout).unwrap();
    assert!(json.contains("\"traces\": 5"), "{json}");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_bad_file_among_good_ones_is_the_same_error_whatever_the_threads() {
    let d = dir("bad");
    let mut files = write_traces(&d);
    let bad = d.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"e\":\"header\",\"version\":1,\"pid\":1}\n{\"e\":\"acquire\",\"t\":1,\"l\":1}\n",
    )
    .unwrap();
    files.insert(2, bad);
    let one = analyze(1, &files, &[]);
    assert_eq!(one.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&one.stderr).into_owned();
    assert!(stderr.contains("bad.jsonl:2:"), "{stderr}");
    for threads in [2, 8] {
        let many = analyze(threads, &files, &[]);
        assert_eq!(many.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&many.stderr), stderr);
        assert!(many.stdout.is_empty());
    }
    std::fs::remove_dir_all(&d).ok();
}
