//! A listing bound (`--max-listed`, `--max-cycles`, `--max-filtered-steps`) cuts only the
//! listing of filtered candidates, never a verdict: its warning must not read as an incomplete
//! search (a checker counting the word "incomplete" counted it, while `summary.complete` was
//! true), and the report says what was cut, the same way in text, JSON and SARIF.

use serde_json::Value;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_lockcheck");

/// Bensalem: one violation and one filtered candidate (fork-join).
const TRACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/std/Bensalem.std");

fn analyze(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("analyze")
        .args(args)
        .arg(TRACE)
        .output()
        .expect("run lockcheck")
}

fn json(args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let o = analyze(&all);
    serde_json::from_slice(&o.stdout).expect("a JSON report")
}

#[test]
fn a_cut_listing_of_filtered_candidates_is_said_as_such_not_as_incomplete() {
    let r = json(&["--max-listed", "0"]);
    let summary = &r["summary"];
    assert_eq!(summary["complete"], true, "{summary}");
    assert_eq!(summary["filtered_complete"], false, "{summary}");
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("listing of filtered candidates")
                && w.contains("a listing bound only")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().all(|w| !w.contains("incomplete")),
        "a listing bound read as an incomplete search: {warnings:?}"
    );

    // Text: the warning as in JSON, and the summary line says what was cut.
    let o = analyze(&["--verbose", "--max-listed", "0"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let summary_line = text.lines().last().unwrap();
    assert!(
        summary_line.ends_with("(filtered candidates: listing cut short)"),
        "{summary_line}"
    );
    assert!(!text.contains("incomplete"), "{text}");
    assert_eq!(o.status.code(), Some(1));

    // SARIF: the invocation says the same.
    let o = analyze(&["--format", "sarif", "--max-listed", "0"]);
    let sarif: Value = serde_json::from_slice(&o.stdout).unwrap();
    let inv = &sarif["runs"][0]["invocations"][0];
    assert_eq!(inv["properties"]["complete"], true, "{inv}");
    assert_eq!(inv["properties"]["filteredComplete"], false, "{inv}");
    let notes = inv["toolExecutionNotifications"].as_array().unwrap();
    assert!(
        notes.iter().all(|n| !n["message"]["text"]
            .as_str()
            .unwrap()
            .contains("incomplete")),
        "{notes:?}"
    );
}

#[test]
fn a_whole_listing_adds_nothing_to_the_report() {
    let r = json(&[]);
    assert_eq!(r["summary"]["complete"], true);
    assert!(
        r["summary"].get("filtered_complete").is_none(),
        "{}",
        r["summary"]
    );
    let o = analyze(&["--format", "sarif"]);
    let sarif: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(sarif["runs"][0]["invocations"][0]
        .get("properties")
        .is_none());
}
