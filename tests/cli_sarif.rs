//! `lockcheck analyze --format sarif`: SARIF 2.1.0 valid against the OASIS schema (a copy under
//! `fixtures/sarif/`), one result per finding with a stable rule id, locations relative to the
//! repository root, related locations for every edge, fingerprints stable across runs.

mod common;

#[path = "support/scratch.rs"]
mod scratch;

use common::{corpus, fixture, lockcheck, root, Run};
use scratch::Scratch;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root("fixtures/sarif/sarif-schema-2.1.0.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft7::new(&schema).expect("the SARIF schema compiles")
}

fn sarif(files: &[PathBuf], extra: &[&str]) -> (Run, Value) {
    let mut args: Vec<std::ffi::OsString> =
        vec!["analyze".into(), "--format".into(), "sarif".into()];
    args.extend(extra.iter().map(|s| s.into()));
    args.extend(files.iter().map(|f| f.clone().into_os_string()));
    let run = lockcheck(args);
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr));
    (run, v)
}

fn assert_valid(log: &Value) {
    let errors: Vec<String> = validator()
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "SARIF schema errors: {errors:#?}");
}

fn results(log: &Value) -> &Vec<Value> {
    log["runs"][0]["results"].as_array().expect("results")
}

#[test]
fn an_inversion_is_one_valid_result_with_related_locations_for_every_edge() {
    let (run, log) = sarif(&[fixture("ab-ba.json")], &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_valid(&log);
    assert_eq!(log["version"], "2.1.0");
    let driver = &log["runs"][0]["tool"]["driver"];
    assert_eq!(driver["name"], "lockcheck");
    let rule_ids: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rule_ids,
        [
            "lockcheck/lock-order-inversion",
            "lockcheck/class-lock-order-inversion",
            "lockcheck/hierarchy-violation",
            "lockcheck/self-deadlock",
            "lockcheck/recursive-read",
            "lockcheck/fork-left-held",
            "lockcheck/held-across-await",
            "lockcheck/condvar-lost-wakeup",
            "lockcheck/condvar-wait-holding-lock",
        ]
    );
    for r in driver["rules"].as_array().unwrap() {
        assert!(r["help"]["text"].as_str().unwrap().contains("How to fix"));
    }
    let rs = results(&log);
    assert_eq!(rs.len(), 1);
    let r = &rs[0];
    assert_eq!(r["ruleId"], "lockcheck/lock-order-inversion");
    assert_eq!(r["ruleIndex"], 0);
    assert_eq!(r["level"], "error");
    let loc = &r["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "src/bank.rs");
    assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
    assert_eq!(loc["region"]["startLine"], 21);
    assert_eq!(loc["region"]["startColumn"], 9);
    // Both acquisitions and both places the held locks were taken.
    let related: Vec<String> = r["relatedLocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}:{}",
                l["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap(),
                l["physicalLocation"]["region"]["startLine"]
            )
        })
        .collect();
    assert_eq!(
        related,
        [
            "src/bank.rs:21",
            "src/bank.rs:20",
            "src/audit.rs:41",
            "src/audit.rs:40"
        ]
    );
    assert_eq!(
        r["codeFlows"][0]["threadFlows"].as_array().unwrap().len(),
        2
    );
    // The fingerprint is the report's id.
    let json = common::analyze_json(&[fixture("ab-ba.json")], &[]).json();
    assert_eq!(
        r["partialFingerprints"]["lockcheckFindingId/v1"],
        json["violations"][0]["id"]
    );
}

#[test]
fn fingerprints_are_stable_across_runs_and_trace_order() {
    // The same two processes, read in either order (a directory of `{pid}.json` files sorts
    // differently on every CI run), give the same finding and the same fingerprint.
    let a = fixture("merge/a.json");
    let b = fixture("merge/b.json");
    let (_, one) = sarif(&[a.clone(), b.clone()], &[]);
    let (_, two) = sarif(&[b, a], &[]);
    assert_valid(&one);
    let fp = |log: &Value| results(log)[0]["partialFingerprints"].clone();
    assert_eq!(fp(&one), fp(&two));
    assert_eq!(
        results(&one)[0]["ruleId"],
        "lockcheck/class-lock-order-inversion"
    );
}

#[test]
fn rapid_locations_are_logical() {
    let (run, log) = sarif(&[corpus("std", "Bensalem.std")], &[]);
    assert_eq!(run.code, Some(1));
    assert_valid(&log);
    let r = &results(&log)[0];
    let logical = &r["locations"][0]["logicalLocations"][0];
    assert!(
        logical["name"].as_str().unwrap().starts_with("loc "),
        "{logical}"
    );
    assert!(r["locations"][0].get("physicalLocation").is_none());
}

#[test]
fn absolute_paths_are_made_relative_to_the_repo_root() {
    let dir = Scratch::new("sarif");
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let text = std::fs::read_to_string(fixture("ab-ba.json"))
        .unwrap()
        .replace(
            "\"loc\":\"src/bank.rs:21:9\"",
            &format!("\"loc\":\"{}/src/bank.rs:21:9\"", repo.display()),
        )
        .replace(
            "\"loc\":\"src/audit.rs:41:13\"",
            "\"loc\":\"/elsewhere/registry/dep.rs:41:13\"",
        );
    let trace = dir.join("abs.json");
    std::fs::write(&trace, text).unwrap();
    let (_, log) = sarif(
        std::slice::from_ref(&trace),
        &["--repo-root", repo.to_str().unwrap()],
    );
    assert_valid(&log);
    let r = &results(&log)[0];
    let art = &r["locations"][0]["physicalLocation"]["artifactLocation"];
    assert_eq!(art["uri"], "src/bank.rs", "{r}");
    assert_eq!(art["uriBaseId"], "%SRCROOT%");
    let outside = &r["relatedLocations"][2]["physicalLocation"]["artifactLocation"];
    assert_eq!(outside["uri"], "file:///elsewhere/registry/dep.rs");
    assert!(outside.get("uriBaseId").is_none());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_kind_of_finding_is_valid_sarif() {
    let cases: Vec<(Vec<PathBuf>, Vec<String>)> = vec![
        (vec![fixture("class-inversion.json")], vec![]),
        (vec![fixture("three-way-deadlock.json")], vec![]),
        (vec![fixture("clean.json")], vec![]),
        (
            vec![fixture("hierarchy-sites.json")],
            vec![
                "--config".into(),
                root("fixtures/json/config/hierarchy.toml")
                    .display()
                    .to_string(),
            ],
        ),
        (
            vec![fixture("ab-ba.json")],
            vec![
                "--config".into(),
                root("fixtures/json/config/suppress-abba.toml")
                    .display()
                    .to_string(),
            ],
        ),
        (vec![corpus("rapidbin", "DiningPhil.data")], vec![]),
    ];
    for (files, extra) in cases {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (run, log) = sarif(&files, &extra);
        assert!(matches!(run.code, Some(0 | 1)), "{files:?}: {}", run.stderr);
        assert_valid(&log);
    }
}

#[test]
fn a_hierarchy_violation_and_a_suppressed_finding_in_sarif() {
    let config = root("fixtures/json/config/hierarchy.toml");
    let (run, log) = sarif(
        &[fixture("hierarchy-sites.json")],
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(1));
    let r = &results(&log)[0];
    assert_eq!(r["ruleId"], "lockcheck/hierarchy-violation");
    assert_eq!(r["ruleIndex"], 2);
    assert_eq!(
        r["locations"][0]["physicalLocation"]["region"]["startLine"],
        21
    );

    let config = root("fixtures/json/config/suppress-abba.toml");
    let (run, log) = sarif(
        &[fixture("ab-ba.json")],
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(0), "suppressed: {}", run.stderr);
    let r = &results(&log)[0];
    assert_eq!(r["suppressions"][0]["kind"], "external");
    assert!(r["suppressions"][0]["justification"]
        .as_str()
        .unwrap()
        .contains("reviewed"));
}

#[test]
fn sarif_goes_to_a_file_with_dash_o() {
    let dir = Scratch::new("sarif-o");
    let out = dir.join("lockcheck.sarif");
    let run = lockcheck([
        "analyze".as_ref(),
        "--format".as_ref(),
        "sarif".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        fixture("ab-ba.json").as_os_str(),
    ]);
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.is_empty());
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_valid(&log);
    assert!(Path::new(&out).exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// A finding that is not an inversion keeps its own words in SARIF: the text report's title as
/// the message, not "Lock-order inversion between ...", which misnamed self-deadlocks, condvar
/// and fork findings and a task's hold across an await.
#[test]
fn a_finding_other_than_an_inversion_is_named_as_the_text_report_names_it() {
    let file = root("fixtures/json/analyze/held-across-await.json");
    let (run, log) = sarif(std::slice::from_ref(&file), &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_valid(&log);
    let text = lockcheck([
        "analyze".into(),
        "--no-config".into(),
        file.into_os_string(),
    ]);
    for r in results(&log) {
        let m = r["message"]["text"].as_str().unwrap();
        assert!(m.starts_with("Held across await: "), "{m}");
        assert!(!m.contains("inversion"), "{m}");
        let title = m
            .trim_start_matches("Held across await: ")
            .split('.')
            .next()
            .unwrap();
        assert!(
            text.stdout.contains(title) || text.stderr.contains(title),
            "the text report says the same: {title}\n{}",
            text.stdout
        );
    }
    assert!(!results(&log).is_empty());
}
