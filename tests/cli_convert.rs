//! `lockcheck convert` and the `.lct` binary trace: every fixture converted to `.lct` analyzes to
//! the same report as its source, `.lct` converts back to the same events, and a `.lct` cut
//! anywhere is readable up to its last complete record.

mod common;
#[path = "support/trace_file.rs"]
mod trace_file;

use common::{analyze_json, corpus, fixture, lockcheck, root};
use lockcheck_analyze::read::TraceReader;
use std::path::{Path, PathBuf};
use trace_file::{events, tmp};

fn convert(input: &Path, output: &Path) {
    let run = lockcheck(["convert".as_ref(), input.as_os_str(), output.as_os_str()]);
    assert_eq!(run.code, Some(0), "{}: {}", input.display(), run.stderr);
}

/// The report without what depends on the file itself (its name and size).
fn comparable(mut r: serde_json::Value) -> serde_json::Value {
    r["summary"]["bytes"] = 0.into();
    r
}

#[test]
fn every_fixture_analyzes_the_same_as_lct() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(root("fixtures/json/analyze"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        // A cut trace is refused by convert as by analyze (see the truncation test).
        .filter(|p| !p.ends_with("truncated.json"))
        .collect();
    inputs.sort();
    inputs.push(corpus("std", "Bensalem.std"));
    inputs.push(corpus("rapidbin", "DiningPhil.data"));
    inputs.push(fixture("ab-ba.json"));
    assert!(inputs.len() > 5);
    for input in &inputs {
        let stem = input.file_stem().unwrap().to_string_lossy().into_owned();
        let lct = tmp(&format!("{stem}.lct"));
        convert(input, &lct);
        let a = analyze_json(std::slice::from_ref(input), &[]);
        let b = analyze_json(&[lct.to_path_buf()], &[]);
        assert_eq!(a.code, b.code, "{stem}: {}", b.stderr);
        let (ja, jb) = (comparable(a.json()), comparable(b.json()));
        assert_eq!(ja["violations"], jb["violations"], "{stem}");
        assert_eq!(ja["filtered"], jb["filtered"], "{stem}");
        assert_eq!(ja["hierarchy"], jb["hierarchy"], "{stem}");
        assert_eq!(ja["summary"]["violations"], jb["summary"]["violations"]);
        // Back to JSON Lines: the same events.
        let json = tmp(&format!("{stem}.back.jsonl"));
        convert(&lct, &json);
        assert_eq!(events(&lct), events(&json), "{stem}");
        // The binary form is smaller than the JSON Lines one.
        let (l, j) = (
            std::fs::metadata(&lct).unwrap().len(),
            std::fs::metadata(&json).unwrap().len(),
        );
        assert!(l < j, "{stem}: {l} >= {j}");
    }
}

#[test]
fn a_cut_lct_is_read_up_to_its_last_complete_record() {
    let lct = tmp("cut-source.lct");
    convert(&fixture("ab-ba.json"), &lct);
    let bytes = std::fs::read(&lct).unwrap();
    let whole = events(&lct);
    let cut = tmp("cut.lct");
    let mut seen_partial = false;
    for k in 0..bytes.len() {
        std::fs::write(&cut, &bytes[..k]).unwrap();
        let got: Vec<_> = TraceReader::open(&cut, None)
            .unwrap()
            .allow_truncated(true)
            .collect();
        if k < 4 {
            continue;
        }
        // Every event read is a complete event of the whole trace, in order, and no error.
        let ok: Vec<_> = got
            .into_iter()
            .map(|e| e.expect("cut is allowed"))
            .collect();
        assert_eq!(&whole[..ok.len()], &ok[..], "cut at {k}");
        seen_partial |= !ok.is_empty() && ok.len() < whole.len();
    }
    assert!(seen_partial);
    // Without --allow-truncated a cut inside a record is an error naming the byte.
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    let run = lockcheck(["analyze".as_ref(), cut.as_os_str()]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("byte"), "{}", run.stderr);
    assert!(run.stderr.contains("--allow-truncated"), "{}", run.stderr);
}

#[test]
fn not_an_lct_file_is_refused() {
    let bad = tmp("bad.lct");
    // Read by its content (JSON), whatever its name: refused for JSON's own reason.
    std::fs::write(&bad, b"{\"e\":\"header\"}\n").unwrap();
    let run = lockcheck(["analyze".as_ref(), bad.as_os_str()]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("missing field `version`"),
        "{}",
        run.stderr
    );
    // Told to read `.lct`: not one.
    let run = lockcheck([
        "analyze".as_ref(),
        "--input-format".as_ref(),
        "lct".as_ref(),
        bad.as_os_str(),
    ]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("not a .lct trace"), "{}", run.stderr);
    std::fs::write(&bad, b"LCT\x09").unwrap();
    let run = lockcheck(["analyze".as_ref(), bad.as_os_str()]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("version 9"), "{}", run.stderr);
}

/// A `.lct` file holding only its magic is an empty trace: read without error (exit 0), and
/// `analyze` says it holds no events, whatever the file is called.
#[test]
fn a_magic_only_lct_is_an_empty_trace_said() {
    for name in ["magic.lct", "magic.jsonl"] {
        let file = tmp(name);
        std::fs::write(&file, lockcheck_core::lct::raw::MAGIC_V5).unwrap();
        let run = lockcheck(["analyze".as_ref(), file.as_os_str()]);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        assert!(run.stdout.contains("no events"), "{name}: {}", run.stdout);
    }
}
