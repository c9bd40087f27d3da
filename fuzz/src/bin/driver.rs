//! A fuzz driver that runs on a stable toolchain: no coverage feedback, but random and mutated
//! inputs seeded from the project's fixtures, for every target of `lockcheck_fuzz`.
//!
//! ```text
//! driver [--target NAME]... [--seconds S] [--seed N] [--max-len BYTES] [--timeout-ms MS]
//!        [--replay FILE]... [--dump-trace OUT]
//! ```
//!
//! `--dump-trace OUT` with `--replay` writes the events an `analyze` input stands for as JSON
//! Lines trace files (`OUT.0.json`, `OUT.1.json`, ... one per generated trace), for
//! `lockcheck analyze`.
//!
//! Each target runs for `S` seconds (default 5). A panic prints the input's path under
//! `fuzz/artifacts/<target>/` and exits 1; an input that runs longer than 20 s (`--timeout-ms`) is saved the same
//! way as a `timeout-*` and the driver aborts. `--replay` runs saved inputs (crash reproduction).
//! Prints, per target, the executions, the rate and the inputs kept as seeds.

use lockcheck_fuzz::TARGETS;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// xorshift64*: small, fast, reproducible from `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Tokens that matter to the text formats: spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"\"",
    b":",
    b",",
    b"\n",
    b"\r\n",
    b"|",
    b"(",
    b")",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b"0",
    b"-1",
    b"1e999",
    b"18446744073709551615",
    b"18446744073709551616",
    b"4294967296",
    b"9223372036854775807",
    b"null",
    b"true",
    b"[]",
    b"{\"e\":\"header\",\"version\":1,\"pid\":1}\n",
    b"{\"e\":\"acquire\",\"t\":1,\"l\":2,\"m\":\"w\"}\n",
    b"{\"e\":\"release\",\"t\":2,\"l\":2}\n",
    b"{\"e\":\"fork\",\"t\":1,\"child\":9}\n",
    b"{\"e\":\"join\",\"t\":1,\"child\":77}\n",
    b"{\"e\":\"lock\",\"l\":3,\"c\":4}\n",
    b"{\"e\":\"convert\",\"t\":1,\"l\":2,\"m\":\"u\"}\n",
    b"\"e\":\"",
    b"\"m\":\"rr\"",
    b"\"how\":\"timed\"",
    b"T1|acq(L1)|1\n",
    b"T2|rel(L1)|2\n",
    b"T1|fork(T3)|3\n",
    b"T1|join(T3)|3\n",
    b"T9|r(V1)|4\n",
    b"acq(",
    b"rel(",
    b"fork(",
    b"join(",
    b"req(",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>, max_len: usize) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = input.len();
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                input.drain(i..i + n);
            }
            4 if len > 0 => {
                // Duplicate a range (repetition: deep nesting, repeated declarations).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let copy = input[i..i + n].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, copy);
            }
            5 => {
                let tok = TOKENS[rng.below(TOKENS.len())];
                let i = rng.below(len + 1);
                input.splice(i..i, tok.iter().copied());
            }
            6 if len > 0 => input.truncate(rng.below(len)),
            7 if !seeds.is_empty() => {
                // Splice: a piece of another seed.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below((other.len() - i).min(512));
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            8 if len >= 4 => {
                // An interesting integer over 1, 4 or 8 bytes (the binary format is big-endian).
                let v: u64 = match rng.below(6) {
                    0 => 0,
                    1 => u64::MAX,
                    2 => i64::MAX as u64,
                    3 => 1 << 31,
                    4 => u32::MAX as u64,
                    _ => rng.next() % 64,
                };
                let w = [1, 4, 8][rng.below(3)].min(len);
                let i = rng.below(len - w + 1);
                input[i..i + w].copy_from_slice(&v.to_be_bytes()[8 - w..]);
            }
            9 if len > 0 => {
                // Digits: change a number.
                let i = rng.below(len);
                input[i] = b'0' + rng.below(10) as u8;
            }
            _ => {
                let i = rng.below(len + 1);
                const BYTES: &[u8] = b"\n|(){}\":,0123456789TL";
                input.insert(i, BYTES[rng.below(BYTES.len())]);
            }
        }
    }
    input.truncate(max_len);
}

fn read_seeds(root: &Path, target: &str, max_len: usize) -> Vec<Vec<u8>> {
    let exts: &[&str] = match target {
        "json" => &["json", "jsonl"],
        "std" => &["std"],
        "rapidbin" => &["data"],
        // JSON fixtures, re-encoded below.
        "lct" => &["json", "jsonl"],
        _ => &[],
    };
    let mut out = Vec::new();
    let mut dirs = vec![root.join("fixtures")];
    if let Some(corpus) = std::env::var_os("LOCKCHECK_FUZZ_CORPUS") {
        dirs.push(PathBuf::from(corpus).join(target));
    }
    dirs.push(root.join("fuzz/corpus").join(target));
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            let in_corpus = p.components().any(|c| c.as_os_str() == "corpus");
            if in_corpus || exts.contains(&ext) {
                if let Ok(bytes) = std::fs::read(&p) {
                    // A fixture seeds the `.lct` target in versions 2 and 3.
                    let seeds = if target == "lct" && !in_corpus {
                        vec![
                            lockcheck_fuzz::lct_seed(&bytes),
                            lockcheck_fuzz::lct_seed_v3(&bytes),
                        ]
                    } else {
                        vec![bytes]
                    };
                    for mut bytes in seeds {
                        // Large fixtures contribute their beginning (a valid header and events).
                        bytes.truncate(max_len);
                        out.push(bytes);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn save(root: &Path, target: &str, prefix: &str, input: &[u8]) -> PathBuf {
    let dir = root.join("fuzz/artifacts").join(target);
    let _ = std::fs::create_dir_all(&dir);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in input {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let path = dir.join(format!("{prefix}-{h:016x}"));
    let _ = std::fs::write(&path, input);
    path
}

struct Args {
    targets: Vec<String>,
    seconds: f64,
    seed: u64,
    max_len: usize,
    replay: Vec<PathBuf>,
    timeout_ms: u64,
    dump: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut a = Args {
        targets: Vec::new(),
        seconds: 5.0,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1,
        max_len: 4096,
        replay: Vec::new(),
        timeout_ms: 20_000,
        dump: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next().unwrap_or_else(|| {
                eprintln!("driver: {flag} needs a value");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--target" => a.targets.push(value()),
            "--seconds" => a.seconds = value().parse().expect("--seconds: a number"),
            "--seed" => a.seed = value().parse::<u64>().expect("--seed: a number") | 1,
            "--max-len" => a.max_len = value().parse().expect("--max-len: a number"),
            "--replay" => a.replay.push(PathBuf::from(value())),
            "--timeout-ms" => a.timeout_ms = value().parse().expect("--timeout-ms: a number"),
            "--dump-trace" => a.dump = Some(PathBuf::from(value())),
            _ => {
                eprintln!("driver: unknown argument {flag}\nusage: driver [--target json|std|rapidbin|lct|analyze]... [--seconds S] [--seed N] [--max-len BYTES] [--replay FILE]...");
                std::process::exit(2)
            }
        }
    }
    if a.targets.is_empty() {
        a.targets = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    }
    a
}

fn main() {
    let args = parse_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/ has a parent")
        .to_path_buf();
    let find = |name: &str| {
        TARGETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .unwrap_or_else(|| {
                eprintln!("driver: unknown target {name}");
                std::process::exit(2)
            })
    };

    if let (Some(out), true) = (&args.dump, !args.replay.is_empty()) {
        for p in &args.replay {
            let data = std::fs::read(p).expect("read the input to dump");
            let traces = lockcheck_fuzz::events_of(&data);
            for (i, t) in traces.iter().enumerate() {
                let mut buf = Vec::new();
                for e in t {
                    e.write_line(&mut buf);
                }
                let path = PathBuf::from(format!("{}.{i}.json", out.display()));
                std::fs::write(&path, buf).expect("write the trace");
                eprintln!("driver: wrote {}", path.display());
            }
        }
        return;
    }
    if !args.replay.is_empty() {
        for name in &args.targets {
            let f = find(name);
            for p in &args.replay {
                let data = std::fs::read(p).expect("read the input to replay");
                eprintln!("driver: replaying {} on {name}", p.display());
                f(&data);
            }
        }
        eprintln!("driver: replay done, no panic");
        return;
    }

    // The input being run and when it started: a watcher saves an input that hangs.
    let current: Arc<Mutex<(String, Vec<u8>)>> = Arc::default();
    let started = Arc::new(AtomicU64::new(0));
    let epoch = Instant::now();
    {
        let current = Arc::clone(&current);
        let started = Arc::clone(&started);
        let root = root.clone();
        let timeout_ms = args.timeout_ms;
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            let s = started.load(Ordering::Relaxed);
            if s != 0 && (epoch.elapsed().as_millis() as u64).saturating_sub(s) > timeout_ms {
                let (target, input) = current.lock().unwrap().clone();
                let p = save(&root, &target, "timeout", &input);
                eprintln!(
                    "driver: {target}: an input ran for more than {timeout_ms} ms, saved to {}",
                    p.display()
                );
                std::process::abort();
            }
        });
    }

    println!(
        "driver: seed {} , {} s per target, max input {} bytes",
        args.seed, args.seconds, args.max_len
    );
    let mut rng = Rng(args.seed);
    let mut failed = false;
    for name in &args.targets {
        let f = find(name);
        let mut seeds = read_seeds(&root, name, args.max_len);
        let initial = seeds.len();
        let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
        let start = Instant::now();
        let mut execs: u64 = 0;
        let mut input = Vec::new();
        while Instant::now() < deadline {
            // A fresh random input one time in eight, else a mutated seed.
            if seeds.is_empty() || rng.chance(8) {
                let n = rng.below(args.max_len.min(1024) + 1);
                input.clear();
                input.extend((0..n).map(|_| rng.next() as u8));
            } else {
                input.clear();
                input.extend_from_slice(&seeds[rng.below(seeds.len())]);
                mutate(&mut rng, &seeds, &mut input, args.max_len);
            }
            {
                let mut cur = current.lock().unwrap();
                cur.0.clear();
                cur.0.push_str(name);
                cur.1.clear();
                cur.1.extend_from_slice(&input);
            }
            started.store(epoch.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
            let r = std::panic::catch_unwind(|| f(&input));
            started.store(0, Ordering::Relaxed);
            execs += 1;
            if r.is_err() {
                let p = save(&root, name, "crash", &input);
                eprintln!(
                    "driver: {name}: PANIC on an input of {} bytes, saved to {}\n  reproduce: cargo run --manifest-path fuzz/Cargo.toml --release --no-default-features --bin driver -- --target {name} --replay {}",
                    input.len(),
                    p.display(),
                    p.display()
                );
                failed = true;
                break;
            }
            // Without coverage, keep a few mutants as seeds so that mutations can stack.
            if seeds.len() < initial + 256 && rng.chance(64) {
                seeds.push(input.clone());
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "driver: {name}: {execs} executions in {secs:.1} s ({:.0}/s), {initial} seeds",
            execs as f64 / secs.max(1e-9)
        );
    }
    if failed {
        std::process::exit(1);
    }
}
