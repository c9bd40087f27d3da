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

/// `convert` never destroys its input: an output that is the input file itself (the same
/// path, another spelling of it, a hard link) is refused before anything is written, with
/// exit 2, and the trace keeps every byte.
#[test]
fn converting_a_trace_onto_itself_is_refused_and_the_trace_kept() {
    // Larger than the reader's first buffer: a small trace, read whole before the output was
    // created, survived being written over, a large one was emptied.
    let std = tmp("self.std");
    let lines = "T1|acq(L1)|7\nT2|acq(L2)|8\nT2|rel(L2)|9\nT1|rel(L1)|10\n".repeat(50_000);
    std::fs::write(&std, lines).unwrap();
    let trace = tmp("self.jsonl");
    convert(&std, &trace);
    let before = std::fs::read(&trace).unwrap();
    assert!(before.len() > 4 << 20, "{}", before.len());
    let dir = trace.parent().unwrap();
    let respelled = dir.join(".").join(trace.file_name().unwrap());
    let mut outputs = vec![trace.to_path_buf(), respelled];
    // A hard link is found by the file's identity, which the test reads on Unix only.
    let linked = tmp("self-link.jsonl");
    if cfg!(unix) {
        let _ = std::fs::remove_file(&linked);
        std::fs::hard_link(&trace, &linked).unwrap();
        outputs.push(linked.to_path_buf());
    }
    for output in outputs {
        let run = lockcheck(["convert".as_ref(), trace.as_os_str(), output.as_os_str()]);
        assert_eq!(run.code, Some(2), "{}: {}", output.display(), run.stderr);
        assert!(
            run.stderr.contains("the output is the input trace itself"),
            "{}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(&trace).unwrap(),
            before,
            "{}",
            output.display()
        );
    }
    // Another file is written as usual.
    let other = tmp("self-other.lct");
    convert(&trace, &other);
    assert_eq!(events(&other), events(&trace));
}

/// An output named for RAPID's formats (`.std`, `.data`), which `convert` does not write, is
/// refused without `--to` (no file is created), and written as JSON Lines with `--to json`.
#[test]
fn an_output_named_for_a_format_convert_does_not_write_needs_to() {
    let input = fixture("ab-ba.json");
    for name in ["out.std", "OUT.DATA"] {
        let output = tmp(name);
        let _ = std::fs::remove_file(&output);
        let run = lockcheck(["convert".as_ref(), input.as_os_str(), output.as_os_str()]);
        assert_eq!(run.code, Some(2), "{name}: {}", run.stderr);
        assert!(run.stderr.contains("--to json"), "{}", run.stderr);
        assert!(!output.exists(), "{name} was created");
        let run = lockcheck([
            "convert".as_ref(),
            "--to".as_ref(),
            "json".as_ref(),
            input.as_os_str(),
            output.as_os_str(),
        ]);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        // Read as JSON Lines: a `.data` name is read as RAPID binary whatever its first bytes
        // (any first byte can start a RAPID header), which is why the name needs `--to`.
        let written = TraceReader::open(&output, Some(lockcheck_analyze::read::InputFormat::Json))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(written, events(&input), "{name}");
    }
}
