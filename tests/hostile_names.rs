//! Names from a hostile trace never reach the terminal or a report raw: lock keys, thread names,
//! sites and frames holding terminal escapes, a bell, NUL, CR and LF, a bidirectional override,
//! and HTML, given to `lockcheck analyze` in every output format (text, JSON, SARIF, DOT, HTML)
//! and in the text formats' error messages (which quote the bad token). Each such character is
//! shown escaped (`\u{1b}`); `lockcheck convert` keeps the names as they were.

mod common;

#[path = "support/scratch.rs"]
mod scratch;

use common::lockcheck;
use scratch::Scratch;

/// What a trace must not smuggle into the output: ESC (terminal escapes), BEL (ends an OSC
/// sequence), NUL, CR, a right-to-left override.
const RAW: &[&str] = &["\u{1b}", "\u{7}", "\u{0}", "\r", "\u{202e}"];

/// A JSON Lines trace of an AB-BA inversion whose every name is hostile.
fn hostile_jsonl() -> String {
    let bad = "\u{1b}]0;pwn\u{7}\u{1b}[2J<script>alert(1)</script>\u{202e}\r\nVIOLATION 9 of 9";
    let s = |v: &str| serde_json::to_string(v).unwrap();
    let mut t = String::from("{\"e\":\"header\",\"version\":1,\"pid\":1,\"program\":");
    t += &s(bad);
    t += "}\n";
    t += &format!("{{\"e\":\"thread\",\"t\":1,\"name\":{}}}\n", s(bad));
    t += "{\"e\":\"thread\",\"t\":2,\"name\":\"two\"}\n";
    t += &format!(
        "{{\"e\":\"class\",\"c\":1,\"key\":{},\"kind\":\"mutex\"}}\n",
        s(bad)
    );
    t += "{\"e\":\"class\",\"c\":2,\"key\":\"b\",\"kind\":\"mutex\"}\n";
    t += &format!(
        "{{\"e\":\"site\",\"s\":1,\"loc\":{},\"frames\":[{{\"fn\":{},\"file\":{},\"line\":1}}]}}\n",
        s(&format!("{bad}:1:1")),
        s(bad),
        s(bad)
    );
    t += "{\"e\":\"lock\",\"l\":1,\"c\":1}\n{\"e\":\"lock\",\"l\":2,\"c\":2}\n";
    for (th, a, b) in [(1, 1, 2), (2, 2, 1)] {
        t += &format!("{{\"e\":\"acquire\",\"t\":{th},\"l\":{a},\"m\":\"w\",\"s\":1}}\n");
        t += &format!("{{\"e\":\"acquire\",\"t\":{th},\"l\":{b},\"m\":\"w\",\"s\":1}}\n");
        t += &format!("{{\"e\":\"release\",\"t\":{th},\"l\":{b}}}\n");
        t += &format!("{{\"e\":\"release\",\"t\":{th},\"l\":{a}}}\n");
    }
    t
}

fn assert_no_raw(what: &str, out: &str) {
    for raw in RAW {
        assert!(
            !out.contains(raw),
            "{what}: raw {raw:?} in the output:\n{out}"
        );
    }
}

#[test]
fn hostile_names_are_escaped_in_every_output_format() {
    let dir = Scratch::new("hostile-names");
    let trace = dir.file("names.jsonl", hostile_jsonl().as_bytes());
    for format in ["text", "json", "sarif", "dot", "html"] {
        let run = lockcheck([
            "analyze".as_ref(),
            "--format".as_ref(),
            format.as_ref(),
            trace.as_os_str(),
        ]);
        assert_eq!(
            run.code,
            Some(1),
            "{format}: one violation expected\n{}",
            run.stderr
        );
        assert_no_raw(format, &run.stdout);
        assert_no_raw(format, &run.stderr);
        assert!(
            run.stdout.contains("\\u{1b}]0;pwn"),
            "{format}: the name is shown escaped:\n{}",
            run.stdout
        );
        // A name's newline would start a line of its own: a forged report line.
        assert!(
            !run.stdout.lines().any(|l| l.starts_with("VIOLATION 9")),
            "{format}: a name forged a line:\n{}",
            run.stdout
        );
        match format {
            "json" | "sarif" => {
                serde_json::from_str::<serde_json::Value>(&run.stdout).expect("valid JSON");
            }
            "html" => assert!(!run.stdout.contains("<script>alert"), "HTML injection"),
            _ => {}
        }
    }
    // A conversion keeps the names as they were (JSON escapes them its own way).
    let out = dir.path().join("out.jsonl");
    let run = lockcheck(["convert".as_ref(), trace.as_os_str(), out.as_os_str()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let back = std::fs::read_to_string(&out).unwrap();
    assert!(back.contains("\\u001b]0;pwn"), "{back}");
}

#[test]
fn an_error_quoting_a_hostile_token_escapes_it() {
    let dir = Scratch::new("hostile-token");
    let trace = dir.file("op.std", b"T1|\x1b]0;pwn\x07\x1b[2Jacq(1)|1\n");
    let run = lockcheck(["analyze".as_ref(), trace.as_os_str()]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("op.std:1:4: unknown operation"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("\\u{1b}]0;pwn\\u{7}"), "{}", run.stderr);
    assert_no_raw("error", &run.stderr);
}
