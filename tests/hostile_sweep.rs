//! A deterministic sweep of hostile forms of every fixture format (STD, RAPID binary, JSON,
//! JSON Lines, `.lct`): each seed file cut at every record boundary and at random bytes, with bit
//! flips, huge numbers, fork and join lines duplicated or moved before their counterpart. Every
//! form is analyzed in process (strict and with `allow_truncated`) and a sample of them through
//! the command line. The rule (README, "Bad input"): the exit code is 0, 1 or 2, never a panic or a
//! signal; an exit 2 names the file and a position; a cut at a record boundary analyzes every
//! complete event before it (strictly for the text formats, with `--allow-truncated` for the
//! binary ones, whose header or frames announce more).
//!
//! And the limit on lock instances (`MAX_LOCKS`, 2^29): a trace with more is refused at the
//! event that names one more (exit 2), set lower through `LOCKCHECK_TEST_MAX_LOCKS`.

#[path = "support/scratch.rs"]
mod scratch;

use lockcheck_analyze::read::{InputFormat, TraceReader};
use lockcheck_analyze::{analyze, Options};
use scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_lockcheck");

/// A small deterministic generator (xorshift64*), so that a failure names a form that comes
/// again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// What an analysis gave: the exit code the command line would give, and the events analyzed.
#[derive(Debug, PartialEq)]
enum Outcome {
    Analyzed { violations: bool, events: u64 },
    Refused(String),
}

impl Outcome {
    fn code(&self) -> i32 {
        match self {
            Outcome::Analyzed { violations, .. } => i32::from(*violations),
            Outcome::Refused(_) => 2,
        }
    }
}

/// Analyzes `path` in process; panics (the test fails) on a panic of the analyzer, and on an
/// error that does not name the file and a position.
fn in_process(path: &Path, allow_truncated: bool, what: &str) -> Outcome {
    let opts = Options {
        allow_truncated,
        ..Options::default()
    };
    let r = std::panic::catch_unwind(|| analyze(&[path.to_path_buf()], &opts));
    match r {
        Ok(Ok(report)) => Outcome::Analyzed {
            violations: report.has_violations(),
            events: report.summary.events,
        },
        Ok(Err(e)) => {
            let shown = e.to_string();
            assert!(
                shown.contains(&*path.to_string_lossy()),
                "{what}: the error names no file: {shown}"
            );
            // A file with no event at all has no place to point at.
            assert!(
                e.pos.is_some() || shown.contains("empty") || shown.contains("no event"),
                "{what}: the error names no position: {shown}"
            );
            Outcome::Refused(shown)
        }
        Err(_) => panic!("{what}: the analyzer panicked on {}", path.display()),
    }
}

/// The command line on `path`: its exit code (never a signal, never a panic; an exit 2 is one
/// line naming the file).
fn through_cli(path: &Path, allow_truncated: bool, what: &str) -> i32 {
    let p = path.to_str().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("analyze");
    if allow_truncated {
        cmd.arg("--allow-truncated");
    }
    let o = cmd.arg(p).output().expect("run lockcheck");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{what}: a panic: {err}");
    let code = o
        .status
        .code()
        .unwrap_or_else(|| panic!("{what}: ended by a signal: {:?}", o.status));
    assert!((0..=2).contains(&code), "{what}: exit {code}: {err}");
    if code == 2 {
        assert!(err.contains(p), "{what}: exit 2 without the file: {err}");
    }
    code
}

/// A seed file and how its records are laid out.
struct Seed {
    name: String,
    bytes: Vec<u8>,
    format: InputFormat,
}

impl Seed {
    fn text(&self) -> bool {
        matches!(self.format, InputFormat::Json | InputFormat::Std)
    }

    /// The offsets just after each record: lines for the text formats, 8-byte records after
    /// the 18-byte header for RAPID binary; `.lct`'s frames are found by the reader (none here:
    /// the random cuts cover it).
    fn boundaries(&self) -> Vec<usize> {
        match self.format {
            InputFormat::Json | InputFormat::Std => self
                .bytes
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c == b'\n')
                .map(|(i, _)| i + 1)
                .collect(),
            InputFormat::RapidBin => (18..=self.bytes.len()).step_by(8).collect(),
            InputFormat::Lct => Vec::new(),
        }
    }
}

/// Every seed: the fixtures of each format (the large ones cut to their first 2,000 records,
/// at a record boundary), and `.lct` forms of the JSON ones, made by `lockcheck convert`.
fn seeds(s: &Scratch) -> Vec<Seed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["std", "rapidbin", "json", "json/analyze"] {
        let mut in_dir: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|e| {
                        ["std", "data", "json", "jsonl"].contains(&&*e.to_string_lossy())
                    })
            })
            .collect();
        in_dir.sort();
        files.extend(in_dir);
    }
    let mut seeds = Vec::new();
    for f in files {
        let mut bytes = std::fs::read(&f).unwrap();
        let format = InputFormat::from_path(&f);
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        match format {
            InputFormat::RapidBin if bytes.len() > 18 + 8 * 2000 => {
                // The header's event count says 2,000, the records after it go.
                bytes.truncate(18 + 8 * 2000);
                bytes[10..18].copy_from_slice(&2000i64.to_be_bytes());
            }
            InputFormat::Std | InputFormat::Json => {
                if let Some((i, _)) = bytes
                    .iter()
                    .enumerate()
                    .filter(|&(_, &c)| c == b'\n')
                    .nth(2000)
                {
                    bytes.truncate(i + 1);
                }
            }
            _ => {}
        }
        if format == InputFormat::Json && name.ends_with(".jsonl") || name == "ab-ba.json" {
            let json = s.file(&format!("for-lct-{name}"), &bytes);
            let lct = s.path().join(format!("{name}.lct"));
            let o = Command::new(BIN)
                .args(["convert", json.to_str().unwrap(), lct.to_str().unwrap()])
                .output()
                .expect("run lockcheck convert");
            assert!(o.status.success(), "convert {name}: {o:?}");
            seeds.push(Seed {
                name: format!("{name}.lct"),
                bytes: std::fs::read(&lct).unwrap(),
                format: InputFormat::Lct,
            });
        }
        seeds.push(Seed {
            name,
            bytes,
            format,
        });
    }
    seeds
}

/// The text seed's lines, each with its newline.
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// Whether a line of a text trace is a fork or a join.
fn fork_or_join(line: &[u8]) -> bool {
    let l = String::from_utf8_lossy(line);
    l.contains("fork(") || l.contains("join(") || l.contains("\"fork\"") || l.contains("\"join\"")
}

/// The mutated forms of a seed (name, bytes), all but the cuts at record boundaries.
fn mutants(seed: &Seed, rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
    let b = &seed.bytes;
    let mut out = Vec::new();
    for _ in 0..12 {
        let k = rng.below(b.len() + 1);
        out.push((format!("cut at byte {k}"), b[..k].to_vec()));
    }
    for _ in 0..12 {
        let mut m = b.clone();
        let i = rng.below(b.len());
        let bit = rng.below(8);
        if let Some(c) = m.get_mut(i) {
            *c ^= 1 << bit;
        }
        out.push((format!("bit {bit} of byte {i} flipped"), m));
    }
    for _ in 0..4 {
        let mut m = b.clone();
        let i = rng.below(b.len());
        let n = rng.below(16).min(m.len().saturating_sub(i));
        for c in &mut m[i..i + n] {
            *c = rng.next() as u8;
        }
        out.push((format!("{n} random bytes at {i}"), m));
    }
    if seed.text() {
        // Huge numbers in place of a run of digits.
        let digits: Vec<usize> = (0..b.len())
            .filter(|&i| b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()))
            .collect();
        let huge_numbers = [
            "4294967295",
            "4294967296",
            "9223372036854775807",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999999999",
            "-1",
            "0",
        ];
        // Every run of digits of a small seed (each field of each event), 60 of a larger one.
        let step = digits.len().div_ceil(60).max(1);
        for (j, &at) in digits.iter().enumerate().step_by(step) {
            let huge = huge_numbers[(j / step + rng.below(2)) % huge_numbers.len()];
            let end = (at..b.len())
                .find(|&i| !b[i].is_ascii_digit())
                .unwrap_or(b.len());
            let mut m = b[..at].to_vec();
            m.extend_from_slice(huge.as_bytes());
            m.extend_from_slice(&b[end..]);
            out.push((format!("{huge} at byte {at}"), m));
        }
        // Forks and joins duplicated, and moved first (a join before its fork, a child's events
        // before its fork).
        let ls = lines(b);
        let fj: Vec<usize> = (0..ls.len()).filter(|&i| fork_or_join(&ls[i])).collect();
        for &i in fj.iter().take(6) {
            let mut m = ls.clone();
            m.insert(i, ls[i].clone());
            out.push((format!("line {} twice", i + 1), m.concat()));
            let mut m = ls.clone();
            let line = m.remove(i);
            // After a JSON header, which must stay first.
            let first = usize::from(seed.format == InputFormat::Json && i > 0);
            m.insert(first, line);
            out.push((format!("line {} moved to the start", i + 1), m.concat()));
        }
        if ls.len() > 2 {
            let (i, j) = (rng.below(ls.len()), rng.below(ls.len()));
            let mut m = ls.clone();
            m.swap(i, j);
            out.push((format!("lines {} and {} swapped", i + 1, j + 1), m.concat()));
        }
    } else {
        // Huge numbers in the binary formats: eight bytes of ones at a record's start.
        for _ in 0..4 {
            let mut m = b.clone();
            let i = rng.below(b.len());
            let n = 8.min(m.len() - i);
            m[i..i + n].fill(0xff);
            out.push((format!("0xff x{n} at byte {i}"), m));
        }
    }
    out
}

/// The events a reader yields from `path` before it stops (strictly: at its first error).
fn events_read(path: &Path, format: InputFormat, allow_truncated: bool) -> u64 {
    let r = TraceReader::open(path, Some(format))
        .unwrap()
        .allow_truncated(allow_truncated);
    r.take_while(Result::is_ok).count() as u64
}

#[test]
fn every_fixture_format_cut_flipped_and_reordered_gives_0_1_or_2_never_a_panic() {
    let s = Scratch::new("hostile-sweep");
    let seeds = seeds(&s);
    assert!(
        seeds.iter().any(|s| s.format == InputFormat::Lct)
            && seeds.iter().any(|s| s.format == InputFormat::RapidBin)
            && seeds.iter().any(|s| s.format == InputFormat::Std)
            && seeds.iter().any(|s| s.format == InputFormat::Json),
        "a seed of every format"
    );
    let mut forms = 0;
    let mut refused = 0;
    let mut cli = 0;
    for (n, seed) in seeds.iter().enumerate() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
        let file = |what: &str, bytes: &[u8]| {
            let _ = what;
            s.file(&format!("m-{}", seed.name), bytes)
        };
        // Cuts at record boundaries (at most 300 of them, spread over the file).
        let bounds = seed.boundaries();
        let step = bounds.len().div_ceil(300).max(1);
        let mut last = 0;
        for &k in bounds.iter().step_by(step) {
            let what = format!("{} cut at record boundary {k}", seed.name);
            let p = file(&what, &seed.bytes[..k]);
            let lenient = in_process(&p, true, &what);
            forms += 1;
            // Every complete event before the cut is analyzed: as many as the reader yields.
            let read = events_read(&p, seed.format, true);
            match &lenient {
                Outcome::Analyzed { events, .. } => {
                    assert_eq!(*events, read, "{what}: events analyzed");
                    assert!(*events >= last, "{what}: fewer events than a shorter cut");
                    last = *events;
                }
                Outcome::Refused(e) => {
                    // Only a cut with nothing analyzable (no event yet, a header cut short).
                    assert_eq!(read, 0, "{what}: refused with events read: {e}");
                    refused += 1;
                }
            }
            if seed.text() {
                // A text trace cut at a line is whole: strict reading agrees.
                let strict = in_process(&p, false, &what);
                assert_eq!(strict, lenient, "{what}: strict against lenient");
            }
        }
        for (i, (what, bytes)) in mutants(seed, &mut rng).into_iter().enumerate() {
            let what = format!("{}: {what}", seed.name);
            let p = file(&what, &bytes);
            forms += 1;
            let strict = in_process(&p, false, &what);
            let lenient = in_process(&p, true, &what);
            refused += usize::from(strict.code() == 2);
            // One form in eight through the command line, both ways: the same exit codes.
            if i % 8 == n % 8 {
                cli += 1;
                assert_eq!(
                    through_cli(&p, false, &what),
                    strict.code(),
                    "{what}: CLI against in process"
                );
                assert_eq!(
                    through_cli(&p, true, &what),
                    lenient.code(),
                    "{what}: CLI against in process, --allow-truncated"
                );
            }
        }
    }
    eprintln!(
        "{} seeds, {forms} forms ({refused} refused), {cli} through the command line",
        seeds.len()
    );
    assert!(forms > 1000, "{forms} forms");
}

/// A trace naming more lock instances than the analyzer numbers is refused at the event that
/// names one more, with the file, the event and exit 2 (it was a panic: `MAX_LOCKS` asserted).
#[test]
fn more_locks_than_the_analyzer_numbers_is_an_error_at_that_event() {
    let s = Scratch::new("lock-limit");
    let p = s.file(
        "locks.std",
        b"T1|acq(L1)|1\nT1|rel(L1)|2\nT1|acq(L2)|3\nT1|rel(L2)|4\nT1|acq(L3)|5\nT1|rel(L3)|6\n",
    );
    let run = |limit: &str| {
        Command::new(BIN)
            .args(["analyze", p.to_str().unwrap()])
            .env("LOCKCHECK_TEST_MAX_LOCKS", limit)
            .output()
            .expect("run lockcheck")
    };
    let o = run("2");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let line = err.lines().next().unwrap();
    assert!(
        line.starts_with(&format!("lockcheck: error: {}: event ", p.display()))
            && line.contains("more than the analyzer numbers (2"),
        "{line}"
    );
    // Three locks fit in three.
    assert_eq!(run("3").status.code(), Some(0));
}
