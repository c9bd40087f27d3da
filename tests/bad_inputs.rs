//! Hostile and broken inputs to `lockcheck analyze`: every one gives exit code 2 and one line on
//! stderr naming the file (and the position, where the problem is at a place in the file); none
//! panics; none makes memory grow with the input.
//!
//! `LOCKCHECK_LONG_TESTS=1` adds the expensive forms: a 1 GiB line (a sparse file), a 200 MB
//! valid trace, and the command-line binary at every truncation offset of every format.

#[path = "support/scratch.rs"]
mod scratch;

use lockcheck_analyze::read::MAX_LINE_LEN;
use lockcheck_analyze::{analyze, Options};
use scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_lockcheck");

fn long_tests() -> bool {
    std::env::var_os("LOCKCHECK_LONG_TESTS").is_some_and(|v| v == "1")
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("analyze")
        .args(args)
        .output()
        .expect("run lockcheck")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2, exactly one line on stderr, naming `file` (and matching `pos` if given), no panic.
#[track_caller]
fn assert_refused(o: &Output, file: &str, pos: Option<&str>) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "exit code for {file}; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panic on {file}: {err}");
    assert_eq!(
        err.lines().count(),
        1,
        "one line on stderr for {file}: {err}"
    );
    assert!(err.contains(file), "stderr names {file}: {err}");
    if let Some(pos) = pos {
        assert!(
            err.contains(pos),
            "stderr of {file} shows the position {pos}: {err}"
        );
    }
    err
}

/// The table of `fixtures/bad/README.md`: (file, position) pairs.
fn readme_positions() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string("fixtures/bad/README.md").expect("fixtures/bad/README.md");
    readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
        })
        .collect()
}

#[test]
fn every_bad_fixture_is_refused_with_its_file_and_position() {
    let table = readme_positions();
    let mut seen = 0;
    for entry in std::fs::read_dir("fixtures/bad").expect("fixtures/bad") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "README.md" {
            continue;
        }
        let (_, pos) = table
            .iter()
            .find(|(f, _)| *f == name)
            .unwrap_or_else(|| panic!("fixtures/bad/{name} has no row in the README table"));
        // `5:32` is shown as `file:5:32:`, `byte 42` as `file: byte 42:`.
        let shown = if pos.starts_with("byte") {
            format!("{name}: {pos}:")
        } else {
            format!("{name}:{pos}:")
        };
        let file = path.to_str().unwrap();
        assert_refused(&run(&[file]), file, Some(&shown));
        seen += 1;
    }
    assert!(seen >= 30, "only {seen} bad fixtures");
}

#[test]
fn missing_file_empty_directory_and_zero_byte_files_are_refused() {
    let s = Scratch::new("missing");
    let missing = s.join("no-such-trace.json");
    let missing = missing.to_str().unwrap();
    let err = assert_refused(&run(&[missing]), missing, None);
    assert!(err.contains("No such file"), "{err}");

    let empty_dir = s.join("empty-dir");
    std::fs::create_dir_all(empty_dir.join("nested")).unwrap();
    std::fs::write(empty_dir.join("notes.txt"), "not a trace").unwrap();
    let d = empty_dir.to_str().unwrap();
    let err = assert_refused(&run(&[d]), d, None);
    assert!(err.contains("no trace files"), "{err}");

    for name in ["zero.json", "zero.jsonl", "zero.std", "zero.data"] {
        let p = s.file(name, b"");
        let p = p.to_str().unwrap();
        let pos = if name.ends_with(".data") {
            "byte 0"
        } else {
            ":1:1:"
        };
        let err = assert_refused(&run(&[p]), p, Some(pos));
        assert!(err.contains("empty trace"), "{err}");
    }
}

/// A text trace under a RAPID binary name (`.data`, whose bytes may be anything, so the name
/// decides the reader) is refused as RAPID binary, and the message says what the content looks
/// like and which `--input-format` reads it; that flag then does. A real RAPID binary's error
/// gets no such hint.
#[test]
fn a_text_trace_named_data_is_refused_with_the_format_it_looks_like() {
    let s = Scratch::new("textdata");
    for (name, original, flag) in [
        ("std.data", "fixtures/std/Bensalem.std", "std"),
        ("json.data", "fixtures/json/abba.jsonl", "json"),
    ] {
        let p = s.file(name, &std::fs::read(original).unwrap());
        let p = p.to_str().unwrap();
        let err = assert_refused(&run(&[p]), p, Some("byte 18"));
        assert!(
            err.contains(&format!("try --input-format {flag}")),
            "{name}: {err}"
        );
        // Read as the original is, with its verdict.
        let o = run(&["--input-format", flag, p]);
        assert!(stderr(&o).is_empty(), "{name}: {}", stderr(&o));
        assert_eq!(o.status.code(), run(&[original]).status.code(), "{name}");
    }
    let err = assert_refused(
        &run(&["fixtures/bad/bad-op.data"]),
        "bad-op.data",
        Some("byte 42"),
    );
    assert!(!err.contains("--input-format"), "{err}");
}

#[test]
fn a_bad_file_among_good_ones_is_named() {
    let s = Scratch::new("among");
    let good = "fixtures/json/abba.jsonl";
    let bad = s.file(
        "b.json",
        b"{\"e\":\"header\",\"version\":1,\"pid\":1}\n{\"e\":\"acquire\",\"t\":1}\n",
    );
    let bad = bad.to_str().unwrap();
    let err = assert_refused(&run(&[good, bad, good]), bad, Some(":2:"));
    assert!(err.contains("missing field"), "{err}");
    assert!(!err.contains("abba"), "{err}");
}

#[test]
fn a_directory_named_like_a_trace_is_descended_not_read() {
    let s = Scratch::new("dirtrace");
    let d = s.join("looks-like.json");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy("fixtures/json/abba.jsonl", d.join("inner.jsonl")).unwrap();
    let o = run(&[s.to_str().unwrap()]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 trace"), "{out}");
    // Named directly, a directory without traces is refused with its name.
    let e = s.join("empty.json");
    std::fs::create_dir_all(&e).unwrap();
    assert_refused(&run(&[e.to_str().unwrap()]), "empty.json", None);
}

#[test]
fn unreadable_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("perm");
    let p = s.file(
        "secret.json",
        b"{\"e\":\"header\",\"version\":1,\"pid\":1}\n",
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&p).is_ok() {
        eprintln!("skipped: running as root, permissions are not enforced");
        return;
    }
    let p = p.to_str().unwrap();
    let err = assert_refused(&run(&[p]), p, None);
    assert!(err.contains("ermission denied"), "{err}");
}

#[test]
fn invalid_utf8_in_every_text_position_is_refused() {
    let s = Scratch::new("utf8");
    let header = "{\"e\":\"header\",\"version\":1,\"pid\":1}\n";
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "name.json",
            b"{\"e\":\"thread\",\"t\":1,\"name\":\"\xff\xfe\"}\n",
            ":2:",
        ),
        (
            "key.json",
            b"{\"e\":\"class\",\"c\":1,\"key\":\"a\xc3\",\"kind\":\"mutex\"}\n",
            ":2:",
        ),
        ("tag.json", b"{\"e\":\"\xe2\x82\"}\n", ":2:"),
        (
            "overlong.json",
            b"{\"e\":\"thread\",\"t\":1,\"name\":\"\xc0\xaf\"}\n",
            ":2:",
        ),
        (
            "surrogate.json",
            b"{\"e\":\"thread\",\"t\":1,\"name\":\"\xed\xa0\x80\"}\n",
            ":2:",
        ),
    ];
    for (name, line, pos) in cases {
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend_from_slice(line);
        let p = s.file(name, &bytes);
        let p = p.to_str().unwrap();
        let err = assert_refused(&run(&[p]), p, Some(pos));
        assert!(err.contains("UTF-8"), "{err}");
    }
    let p = s.file("t.std", b"T1|acq(L1)|1\nT\xff|rel(L1)|2\n");
    let p = p.to_str().unwrap();
    assert_refused(&run(&[p]), p, Some(":2:"));
    // A lone invalid byte as the whole file.
    let p = s.file("lone.json", b"\x80");
    assert_refused(&run(&[p.to_str().unwrap()]), "lone.json", Some(":1:"));
}

#[test]
fn hostile_numbers_and_shapes_are_refused_or_tolerated_never_a_panic() {
    let s = Scratch::new("numbers");
    let header = "{\"e\":\"header\",\"version\":1,\"pid\":1}\n";
    // Refused: the value does not fit its field, or is not the right shape.
    let refused = [
        (
            "overflow.json",
            "{\"e\":\"acquire\",\"t\":18446744073709551616,\"l\":1,\"m\":\"w\"}",
        ),
        (
            "negative.json",
            "{\"e\":\"acquire\",\"t\":-1,\"l\":1,\"m\":\"w\"}",
        ),
        (
            "float.json",
            "{\"e\":\"acquire\",\"t\":1.5,\"l\":1,\"m\":\"w\"}",
        ),
        (
            "class-u32.json",
            "{\"e\":\"class\",\"c\":4294967296,\"key\":\"k\",\"kind\":\"mutex\"}",
        ),
        ("array.json", "[1,2,3]"),
        (
            "deep.json",
            &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        ("nul.json", "{\"e\":\"thread\",\"t\":1}\u{0}"),
        ("version-huge.json", ""),
    ];
    for (name, line) in refused {
        let text = if name == "version-huge.json" {
            "{\"e\":\"header\",\"version\":99999999999,\"pid\":1}\n".to_owned()
        } else {
            format!("{header}{line}\n")
        };
        let p = s.file(name, text.as_bytes());
        let p = p.to_str().unwrap();
        assert_refused(&run(&[p]), p, Some(":"));
    }
    // Tolerated: well-formed events that make no sense are analyzed, with a warning.
    let odd = format!(
        "{header}{}\n{}\n{}\n{}\n{}\n{}\n",
        "{\"e\":\"acquire\",\"t\":18446744073709551615,\"l\":18446744073709551615,\"m\":\"w\"}",
        "{\"e\":\"release\",\"t\":7,\"l\":424242}",
        "{\"e\":\"release\",\"t\":1,\"l\":18446744073709551615}",
        "{\"e\":\"join\",\"t\":1,\"child\":99}",
        "{\"e\":\"fork\",\"t\":1,\"child\":1}",
        "{\"e\":\"convert\",\"t\":3,\"l\":5,\"m\":\"u\"}",
    );
    let p = s.file("odd.json", odd.as_bytes());
    let o = run(&[p.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("undeclared") || out.contains("never"),
        "a warning: {out}"
    );
}

/// The exit code `lockcheck analyze` would give, computed in-process (same library call).
fn exit_in_process(path: &Path, allow_truncated: bool) -> i32 {
    let opts = Options {
        allow_truncated,
        ..Options::default()
    };
    match std::panic::catch_unwind(|| analyze(&[path.to_path_buf()], &opts)) {
        Ok(Ok(r)) => i32::from(r.has_violations()),
        Ok(Err(e)) => {
            let shown = e.to_string();
            assert!(shown.contains(&*path.to_string_lossy()), "{shown}");
            assert!(e.pos.is_some() || shown.contains("empty"), "{shown}");
            2
        }
        Err(_) => panic!("analyze panicked on {}", path.display()),
    }
}

fn exit_cli(path: &Path, allow_truncated: bool) -> i32 {
    let p = path.to_str().unwrap();
    let o = if allow_truncated {
        run(&["--allow-truncated", p])
    } else {
        run(&[p])
    };
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "panic on {p}: {err}");
    let code = o.status.code().expect("exit code, not a signal");
    if code == 2 {
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(p), "{err}");
    }
    code
}

const SMALL_JSON: &str = r#"{"e":"header","version":1,"pid":1}
{"e":"class","c":1,"key":"a","kind":"mutex"}
{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":1}
{"e":"acquire","t":1,"l":1,"m":"w"}
{"e":"acquire","t":1,"l":2,"m":"w"}
{"e":"release","t":1,"l":2}
{"e":"release","t":1,"l":1}
{"e":"acquire","t":2,"l":2,"m":"w"}
{"e":"acquire","t":2,"l":1,"m":"w"}
"#;

const SMALL_STD: &str =
    "T1|acq(L1)|1\nT1|acq(L2)|2\nT1|rel(L2)|3\nT1|rel(L1)|4\nT2|acq(L2)|5\nT2|acq(L1)|6\n";

/// Checks every prefix of `bytes` (written as `name`) with `exit` (CLI or in-process).
/// `complete(k)`: the prefix of length k ends at an event boundary; `whole_violation(k)`: the
/// prefix holds the inverting acquisition.
fn every_truncation(
    name: &str,
    bytes: &[u8],
    exit: fn(&Path, bool) -> i32,
    complete: &dyn Fn(usize) -> bool,
    tolerated_mid: &dyn Fn(usize) -> bool,
    whole_violation: &dyn Fn(usize) -> bool,
) {
    let s = Scratch::new(&format!("trunc-{name}"));
    for k in 0..=bytes.len() {
        let p = s.file(name, &bytes[..k]);
        let strict = exit(&p, false);
        let lenient = exit(&p, true);
        let want = i32::from(whole_violation(k));
        if k == 0 {
            assert_eq!((strict, lenient), (2, 2), "{name} cut at 0");
        } else if complete(k) {
            assert_eq!(
                strict, want,
                "{name} cut at {k} (an event boundary), strict"
            );
            assert_eq!(
                lenient, want,
                "{name} cut at {k} (an event boundary), lenient"
            );
        } else {
            if !tolerated_mid(k) {
                assert_eq!(
                    strict, 2,
                    "{name} cut at {k} (mid-event) without --allow-truncated"
                );
            }
            // Either the cut event parses as it stands, or it is dropped (what the complete
            // events before it give), or nothing complete is left.
            let dropped = bytes[..k]
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(2, |i| i32::from(whole_violation(i + 1)));
            // (RAPID binary has no lines: whatever the complete records give.)
            let binary = name.ends_with(".data");
            assert!(
                lenient == want || lenient == dropped || lenient == 2 || (binary && lenient < 2),
                "{name} cut at {k} with --allow-truncated: exit {lenient}"
            );
        }
    }
}

fn json_cases(exit: fn(&Path, bool) -> i32) {
    let b = SMALL_JSON.as_bytes();
    let header_end = SMALL_JSON.find('\n').unwrap() + 1;
    let last_line_start = SMALL_JSON[..b.len() - 1].rfind('\n').unwrap() + 1;
    // A prefix is complete at a newline or just before one (a last line without newline).
    let complete =
        |k: usize| k >= header_end - 1 && (b[k - 1] == b'\n' || b.get(k) == Some(&b'\n'));
    let violation = |k: usize| k >= b.len() - 1;
    let _ = last_line_start;
    every_truncation("t.json", b, exit, &complete, &|_| false, &violation);
}

fn std_cases(exit: fn(&Path, bool) -> i32) {
    let b = SMALL_STD.as_bytes();
    let complete = |k: usize| b[k - 1] == b'\n' || b.get(k) == Some(&b'\n');
    // The inverting `acq(L1)` is whole once the cut is past its `)` (the location is optional).
    let violation = |k: usize| k >= b.len() - "|6\n".len();
    // A cut after the operation or inside the location still parses (the location is optional,
    // and `|12` cut to `|1` is a shorter location).
    let in_location = |k: usize| {
        let line_start = SMALL_STD[..k].rfind('\n').map_or(0, |i| i + 1);
        let line = &SMALL_STD[line_start..k];
        line.ends_with(')') || (line.matches('|').count() == 2 && !line.ends_with('|'))
    };
    every_truncation("t.std", b, exit, &complete, &in_location, &violation);
}

fn rapidbin_cases(exit: fn(&Path, bool) -> i32) {
    let b = std::fs::read("fixtures/rapidbin/Deadlock.data").unwrap();
    let full = exit_in_process(Path::new("fixtures/rapidbin/Deadlock.data"), false);
    // Only the whole file is complete: the header declares the number of records.
    let complete = |k: usize| k == b.len();
    let violation = |k: usize| k == b.len() && full == 1;
    every_truncation("t.data", &b, exit, &complete, &|_| false, &violation);
}

#[test]
fn every_truncation_of_small_traces_in_process() {
    json_cases(exit_in_process);
    std_cases(exit_in_process);
    rapidbin_cases(exit_in_process);
}

#[test]
fn every_truncation_of_a_small_json_trace_through_the_cli() {
    json_cases(exit_cli);
    if long_tests() {
        std_cases(exit_cli);
        rapidbin_cases(exit_cli);
    }
}

/// Peak RSS (kB) of `lockcheck analyze args`, through `/usr/bin/time -v`, with its output.
fn peak_rss_kb(args: &[&str]) -> Option<(u64, Output)> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let o = Command::new(time)
        .arg("-v")
        .arg(BIN)
        .arg("analyze")
        .args(args)
        .output()
        .expect("run /usr/bin/time");
    let err = stderr(&o);
    let kb = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })?
        .trim()
        .parse()
        .ok()?;
    Some((kb, o))
}

/// A file whose second line is `len` bytes without a newline: sparse (zero bytes), so a
/// gigabyte costs no disk.
fn long_line_file(s: &Scratch, len: u64) -> PathBuf {
    let p = s.file(
        "long-line.json",
        b"{\"e\":\"header\",\"version\":1,\"pid\":1}\n",
    );
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(36 + len).unwrap();
    p
}

#[test]
fn a_line_longer_than_the_limit_is_refused_in_bounded_memory() {
    let s = Scratch::new("longline");
    let len = if long_tests() {
        1 << 30
    } else {
        MAX_LINE_LEN as u64 + (6 << 20)
    };
    let p = long_line_file(&s, len);
    let ps = p.to_str().unwrap();
    let o = run(&[ps]);
    let err = assert_refused(&o, ps, Some(":2:1:"));
    assert!(err.contains("longer than"), "{err}");
    if let Some((kb, _)) = peak_rss_kb(&[ps]) {
        // One line buffer of at most MAX_LINE_LEN, plus the program: never the whole line.
        let limit = (MAX_LINE_LEN as u64 >> 10) + 96 * 1024;
        assert!(
            kb < limit,
            "peak RSS {kb} kB on a {len}-byte line (limit {limit} kB)"
        );
    }
    // A long line in the STD format is refused the same way.
    let std_path = s.join("long.std");
    let f = std::fs::File::create(&std_path).unwrap();
    f.set_len(MAX_LINE_LEN as u64 + 1).unwrap();
    let sp = std_path.to_str().unwrap();
    assert_refused(&run(&[sp]), sp, Some(":1:1:"));
}

#[test]
fn a_long_valid_trace_is_streamed_in_bounded_memory() {
    let s = Scratch::new("stream");
    // Two locks taken over and over by two threads: the model stays small however long.
    let rounds: usize = if long_tests() { 2_000_000 } else { 150_000 };
    let mut text = String::from(
        "{\"e\":\"header\",\"version\":1,\"pid\":1}\n{\"e\":\"class\",\"c\":1,\"key\":\"a\",\"kind\":\"mutex\"}\n{\"e\":\"lock\",\"l\":1,\"c\":1}\n{\"e\":\"lock\",\"l\":2,\"c\":1}\n",
    );
    let round = "{\"e\":\"acquire\",\"t\":1,\"l\":1,\"m\":\"w\",\"wait_ns\":100}\n{\"e\":\"acquire\",\"t\":1,\"l\":2,\"m\":\"w\"}\n{\"e\":\"release\",\"t\":1,\"l\":2,\"hold_ns\":5}\n{\"e\":\"release\",\"t\":1,\"l\":1,\"hold_ns\":9}\n";
    text.reserve(round.len() * rounds);
    for _ in 0..rounds {
        text.push_str(round);
    }
    let p = s.file("long.json", text.as_bytes());
    let size = text.len() as u64;
    drop(text);
    let ps = p.to_str().unwrap();
    match peak_rss_kb(&[ps]) {
        Some((kb, o)) => {
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            assert!(
                kb < 64 * 1024,
                "peak RSS {kb} kB while streaming a {size}-byte trace"
            );
        }
        None => {
            let o = run(&[ps]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        }
    }
}

#[test]
fn binary_headers_declaring_huge_counts_allocate_nothing() {
    let s = Scratch::new("binhuge");
    // threads i16::MAX, locks i32::MAX, variables i32::MAX, events i64::MAX, then two records.
    let mut b = Vec::new();
    b.extend_from_slice(&i16::MAX.to_be_bytes());
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    b.extend_from_slice(&i64::MAX.to_be_bytes());
    b.extend_from_slice(&0u64.to_be_bytes());
    b.extend_from_slice(&(1u64 << 10).to_be_bytes());
    let p = s.file("huge.data", &b);
    let ps = p.to_str().unwrap();
    let o = run(&[ps]);
    assert_refused(&o, ps, Some("byte "));
    if let Some((kb, _)) = peak_rss_kb(&[ps]) {
        assert!(kb < 64 * 1024, "peak RSS {kb} kB for a 34-byte file");
    }
    // Declared counts that are negative in every field.
    let mut n = Vec::new();
    n.extend_from_slice(&(-1i16).to_be_bytes());
    n.extend_from_slice(&(-1i32).to_be_bytes());
    n.extend_from_slice(&(-1i32).to_be_bytes());
    n.extend_from_slice(&(-1i64).to_be_bytes());
    let p = s.file("neg.data", &n);
    assert_refused(&run(&[p.to_str().unwrap()]), "neg.data", Some("byte 0"));
}

/// `lockcheck analyze ARGS` under `/usr/bin/time -v` and a watchdog of `limit`: (user CPU
/// seconds, peak RSS in kB, output), or `None` without `/usr/bin/time`. Panics when the watchdog
/// fires.
fn measured(args: &[&str], limit: std::time::Duration) -> Option<(f64, u64, Output)> {
    use std::time::Instant;
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let mut child = Command::new(time)
        .arg("-v")
        .arg(BIN)
        .arg("analyze")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run /usr/bin/time");
    // Read both pipes aside, so that a large report cannot stall the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).map(|_| v)
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).map(|_| v)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lockcheck analyze {args:?} ran over {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let o = Output {
        status,
        stdout: out.join().unwrap().expect("stdout"),
        stderr: err.join().unwrap().expect("stderr"),
    };
    let e = stderr(&o);
    let field = |name: &str| {
        e.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let user: f64 = field("User time (seconds): ")?.parse().ok()?;
    let kb: u64 = field("Maximum resident set size (kbytes): ")?
        .parse()
        .ok()?;
    Some((user, kb, o))
}

/// A chain of `n` forks whose threads each take locks 1 then 2 before starting the next; the
/// last takes them the other way round, and the joins unwind the chain: the inversion is
/// ordered by the forks, so the report has none (one cycle removed by the fork/join filter).
fn fork_chain(s: &Scratch, name: &str, n: u32) -> PathBuf {
    let mut text = String::new();
    for i in 0..n {
        text += &format!("T{i}|acq(1)|1\nT{i}|acq(2)|2\nT{i}|rel(2)|3\nT{i}|rel(1)|4\n");
        text += &format!("T{i}|fork({})|5\n", i + 1);
    }
    text += &format!("T{n}|acq(2)|6\nT{n}|acq(1)|7\nT{n}|rel(1)|8\nT{n}|rel(2)|9\n");
    for i in (0..n).rev() {
        text += &format!("T{i}|join({})|10\n", i + 1);
    }
    s.file(name, text.as_bytes())
}

/// A chain of forks (each thread starts the next, as a recursive spawner does) used to keep a
/// vector clock naming all its ancestors per thread and per dependency: quadratic in the chain's
/// length (20,000 forks took 93 s and 3.9 GB). The clocks now share their nodes
/// (`lockcheck_analyze::clocks`): 4 times the chain costs about 4 times the memory and the CPU,
/// not 16 times, and 200,000 forks fit in 256 MB. Debug or release alike: the bounds are ratios
/// and a memory bound far below the quadratic figure; the time bound is a watchdog.
#[test]
fn a_long_chain_of_forks_is_replayed_in_bounded_memory() {
    use std::time::Duration;
    let s = Scratch::new("forkchain");
    let limit = Duration::from_secs(600);
    let mut runs = Vec::new();
    for n in [10_000, 40_000] {
        let p = fork_chain(&s, &format!("chain{n}.std"), n);
        let ps = p.to_str().unwrap();
        let Some((user, kb, o)) = measured(&["--format", "json", ps], limit) else {
            return;
        };
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("\"violations\": 0"), "{out}");
        assert!(out.contains("\"filter\": \"fork-join\""), "{out}");
        assert!(out.contains(&format!("\"threads\": {}", n + 1)), "{out}");
        runs.push((n, user, kb));
    }
    let [(_, u1, k1), (_, u4, k4)] = runs[..] else {
        unreachable!()
    };
    // Linear: 4x the chain, at most 6x the memory and 8x the CPU (plus the timer's grain);
    // quadratic would be 16x.
    assert!(
        k4 < 6 * k1,
        "peak RSS {k1} kB at 10,000 forks, {k4} kB at 40,000"
    );
    assert!(
        u4 < 8.0 * u1 + 0.5,
        "CPU {u1} s at 10,000 forks, {u4} s at 40,000"
    );
    // The chain of the issue: 200,000 forks (forks only, a 3 MB trace).
    let n = 200_000;
    let text: String = (0..n)
        .map(|i| format!("T{i}|fork({})|1\n", i + 1))
        .collect();
    let p = s.file("chain.std", text.as_bytes());
    let ps = p.to_str().unwrap();
    if let Some((_, kb, o)) = measured(&[ps], limit) {
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(kb < 256 * 1024, "peak RSS {kb} kB for a chain of {n} forks");
    }
}

/// A forked child's trace (`forked`, then the `left_held` the runtime writes before its report
/// of the fork hang): the finding only once the `left_held` event is whole.
const SMALL_CHILD_JSON: &str = r#"{"e":"header","version":1,"pid":2}
{"e":"forked","parent":1,"t":1}
{"e":"thread","t":1,"name":"main"}
{"e":"class","c":1,"key":"logger","kind":"mutex"}
{"e":"lock","l":1,"c":1}
{"e":"site","s":1,"loc":"src/main.rs:3:9"}
{"e":"left_held","t":1,"l":1,"m":"w","s":1}
"#;

fn child_json_cases(exit: fn(&Path, bool) -> i32) {
    let b = SMALL_CHILD_JSON.as_bytes();
    let header_end = SMALL_CHILD_JSON.find('\n').unwrap() + 1;
    let complete =
        |k: usize| k >= header_end - 1 && (b[k - 1] == b'\n' || b.get(k) == Some(&b'\n'));
    let violation = |k: usize| k >= b.len() - 1;
    every_truncation("child.json", b, exit, &complete, &|_| false, &violation);
}

/// The same child's trace in `.lct` (version 2 records, as the recorder writes these events in
/// every `.lct` version).
fn child_lct_cases(exit: fn(&Path, bool) -> i32) {
    use lockcheck_core::trace::{Event, LockKind, Mode};
    let events = [
        Event::Header {
            version: 1,
            pid: 2,
            program: String::new(),
            start_unix_ms: 0,
            hold_resolution_ns: 0,
        },
        Event::Forked { parent: 1, t: 1 },
        Event::Thread {
            t: 1,
            name: Some("main".into()),
        },
        Event::Class {
            c: 1,
            key: "logger".into(),
            kind: LockKind::Mutex,
        },
        Event::Lock {
            l: 1,
            c: 1,
            permits: None,
        },
        Event::Site {
            s: 1,
            loc: "src/main.rs:3:9".into(),
            frames: Vec::new(),
        },
        Event::LeftHeld {
            t: 1,
            l: 1,
            m: Mode::Exclusive,
            s: Some(1),
        },
    ];
    let mut b = lockcheck_core::lct::MAGIC.to_vec();
    let mut ends = Vec::new();
    for e in &events {
        lockcheck_core::lct::encode(e, &mut b);
        ends.push(b.len());
    }
    let first = ends[0];
    let complete = |k: usize| k >= first && ends.contains(&k);
    let violation = |k: usize| k == b.len();
    // (The magic alone reads as a trace without events: exit 0, as for any `.lct`.)
    let magic_only = |k: usize| k == lockcheck_core::lct::MAGIC.len();
    every_truncation("child.lct", &b, exit, &complete, &magic_only, &violation);
}

#[test]
fn every_truncation_of_a_small_forked_childs_trace() {
    child_json_cases(exit_in_process);
    child_lct_cases(exit_in_process);
    child_json_cases(exit_cli);
    if long_tests() {
        child_lct_cases(exit_cli);
    }
}
