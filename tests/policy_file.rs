//! The runtime reads policy files (`LOCKCHECK_POLICY`) with its own small parser, so that users'
//! builds do not compile a TOML crate. Here it is held to the real one (`toml`, what the analyzer
//! uses): on what `lockcheck analyze --timeouts-toml` writes, and on generated and mutated files,
//! whenever `toml` accepts a file the runtime must read the same `[wait_timeout]` entries (or
//! reject the file for the same reason the runtime always did: a value that is no duration). It
//! must never panic.

use lockcheck::__private::policy_entries;
use lockcheck_analyze::hist::Distribution;
use lockcheck_analyze::timeouts::{to_toml, Flag, TimeoutRow};
use std::time::Duration;

type Entries = Vec<(String, Duration)>;

/// A TOML basic string holding `s`, every control character escaped.
fn quoted(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// What the runtime always made of a file the `toml` crate accepts: the `wait_timeout` entries,
/// strings read as durations and non-negative integers as milliseconds; `Err` for anything else.
fn expected(table: &toml::Table) -> Result<Entries, ()> {
    let Some(wt) = table.get("wait_timeout") else {
        return Ok(Vec::new());
    };
    let wt = wt.as_table().ok_or(())?;
    let mut out = Vec::new();
    for (class, v) in wt {
        let d = match v {
            // The duration syntax is the runtime's own; only its reading of the file is under
            // test, so a string value is judged by the runtime on a one-line file.
            toml::Value::String(s) => {
                let one = policy_entries(&format!("[wait_timeout]\nx = {}\n", quoted(s)));
                one.map_err(|_| ())?[0].1
            }
            toml::Value::Integer(ms) if *ms >= 0 => Duration::from_millis(*ms as u64),
            _ => return Err(()),
        };
        out.push((class.clone(), d));
    }
    out.sort();
    Ok(out)
}

/// Checks one file: no panic, and agreement with `toml` whenever `toml` accepts it.
fn check(text: &str) {
    let ours = std::panic::catch_unwind(|| policy_entries(text))
        .unwrap_or_else(|_| panic!("the policy reader panicked on {text:?}"));
    let Ok(table) = text.parse::<toml::Table>() else {
        return;
    };
    let want = expected(&table);
    let got = ours.clone().map(|mut v| {
        v.sort();
        v
    });
    assert_eq!(
        got.as_ref().map_err(|_| ()),
        want.as_ref().map_err(|_| ()),
        "\n--- file:\n{text}\n--- runtime: {ours:?}"
    );
}

fn row(class: &str, ms: u64, reasoning: &str, flags: &[(&str, &str)]) -> TimeoutRow {
    let d = Distribution {
        count: 40,
        p50_ns: 10_000,
        p99_ns: 1_200_000,
        max_ns: 3_000_000,
    };
    TimeoutRow {
        class: class.into(),
        kind: "mutex".into(),
        wait: d,
        hold: d,
        suggested_timeout_ns: ms * 1_000_000 - 1,
        reasoning: reasoning.into(),
        flags: flags
            .iter()
            .map(|(k, m)| Flag {
                kind: (*k).into(),
                message: (*m).into(),
            })
            .collect(),
    }
}

#[test]
fn reads_what_the_analyzer_writes() {
    let nasty = [
        "src/db.rs:10:5",
        "accounts",
        "with \"quotes\" and \\ backslash",
        "tab\tnewline\ncarriage\rnul\u{0}del\u{7f}",
        "unicode é ✓ 🦀",
        "",
        "# not a comment",
        "[not a table]",
        "a = b",
    ];
    let rows: Vec<TimeoutRow> = nasty
        .iter()
        .enumerate()
        .map(|(i, c)| {
            row(
                c,
                10 + i as u64 * 7,
                "10 x p99",
                &[("livelock-risk", "holds \"x\"\r\n[y]")],
            )
        })
        .collect();
    for traces in [0, 1, 2] {
        let text = to_toml(&rows, traces);
        check(&text);
        let got = policy_entries(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let want: Entries = nasty
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_string(), Duration::from_millis(10 + i as u64 * 7)))
            .collect();
        assert_eq!(got, want, "{text}");
        check(&text.replace('\n', "\r\n"));
    }
    assert_eq!(policy_entries(&to_toml(&[], 1)).unwrap(), Vec::new());
}

/// A small deterministic generator (xorshift64*), so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// A policy-looking file: comments, other tables and values of every kind, the `wait_timeout`
/// table in its three spellings, keys in every quoting.
fn generate(rng: &mut Rng) -> String {
    const OTHER: &[&str] = &[
        "",
        "# a comment",
        "   # indented comment \"with quotes\"",
        "[other]",
        "[a.b]",
        "[\"quoted table\"]",
        "[[jobs]]",
        "x = 1",
        "y = \"s # not a comment\"",
        "z = [1, 2, \"a\", [true, false], { q = 1 }]",
        "z2 = [\n  1,\n  # inside\n  2,\n]",
        "w = { a = 1, b = \"x\", c.d = 'y' }",
        "f = 1.5e-3",
        "g = -inf",
        "b = true",
        "d = 1979-05-27T07:32:00Z",
        "d2 = 1979-05-27 07:32:00",
        "t = 07:32:00",
        "ml = \"\"\"\nabc \\\n   def\"\"\"",
        "lit = 'C:\\path'",
        "mll = '''\nraw ''quoted''\n'''",
        "h = 0xdead_beef",
        "o = 0o17",
        "n = -1_000",
    ];
    const NAMES: &[&str] = &[
        "pool",
        "src/db.rs:10:5",
        "a-b_c",
        "with space",
        "quote\"d",
        "back\\slash",
        "tab\there",
        "é✓",
        "1.5s",
        "",
    ];
    const VALUES: &[&str] = &[
        "\"5ms\"",
        "'7ms'",
        "12",
        "1_000",
        "\"2s\"",
        "\"1.5s\"",
        "\"100us\"",
        "0",
        "\"\"\"9ms\"\"\"",
        "'''3ms'''",
        "\"soon\"",
        "-5",
        "true",
        "1.5",
        "[1]",
        "{ a = 1 }",
        "0x10",
        "\"250\"",
    ];
    let mut lines = Vec::new();
    let mut in_wt = false;
    let mut wt_defined = false;
    for _ in 0..rng.below(12) {
        match rng.below(6) {
            0 | 1 => {
                let l = rng.pick(OTHER);
                if l.starts_with('[') {
                    in_wt = false;
                }
                lines.push(l.to_owned());
            }
            2 if !wt_defined => {
                lines.push(
                    rng.pick(&[
                        "[wait_timeout]",
                        "[ wait_timeout ]  # policy",
                        "[\"wait_timeout\"]",
                    ])
                    .to_owned(),
                );
                in_wt = true;
                wt_defined = true;
            }
            _ => {
                let name = rng.pick(NAMES);
                let key = match rng.below(3) {
                    0 if !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
                    {
                        name.to_owned()
                    }
                    1 if !name.contains(['\'', '\t', '\n']) => format!("'{name}'"),
                    _ => quoted(name),
                };
                let value = rng.pick(VALUES);
                if in_wt {
                    lines.push(format!("{key} = {value}"));
                } else if !wt_defined && lines.iter().all(|l| !l.starts_with('[')) {
                    lines.push(format!("wait_timeout.{key} = {value}"));
                } else {
                    lines.push(format!("{key} = {value}"));
                }
            }
        }
    }
    let mut text = lines.join(if rng.below(4) == 0 { "\r\n" } else { "\n" });
    if rng.below(2) == 0 {
        text.push('\n');
    }
    text
}

/// One random edit: a character replaced, removed or doubled.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return text.to_owned();
    }
    let i = rng.below(chars.len());
    const SET: &[char] = &[
        '"', '\'', '[', ']', '{', '}', '\\', '\n', '\r', '=', '.', ',', '#', ' ', '\t', '0', 'u',
        '_', '\u{0}',
    ];
    let mut out = chars.clone();
    match rng.below(3) {
        0 => out[i] = SET[rng.below(SET.len())],
        1 => {
            out.remove(i);
        }
        _ => out.insert(i, chars[i]),
    }
    out.into_iter().collect()
}

#[test]
fn agrees_with_the_toml_crate_on_generated_and_mutated_files() {
    // POLICY_FUZZ_ROUNDS=300000 and POLICY_FUZZ_SEED=n for a longer or different run.
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rounds = env("POLICY_FUZZ_ROUNDS", 3000);
    let mut rng = Rng(env("POLICY_FUZZ_SEED", 0x9e37_79b9_7f4a_7c15) | 1);
    let (mut accepted, mut with_entries) = (0, 0);
    for _ in 0..rounds {
        let text = generate(&mut rng);
        check(&text);
        if let Ok(t) = text.parse::<toml::Table>() {
            accepted += 1;
            if expected(&t).is_ok_and(|e| !e.is_empty()) {
                with_entries += 1;
            }
        }
        for _ in 0..4 {
            let m = mutate(&mut rng, &text);
            check(&m);
        }
    }
    // The generator must produce enough valid policies for the comparison to mean something.
    assert!(
        accepted > 1000 && with_entries > 300,
        "{accepted} / {with_entries}"
    );
}
