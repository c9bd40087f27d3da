//! Writes a "planted" trace: threads nesting locks in one consistent order with K planted AB-BA
//! inversions between threads (see `tests/support/planted.rs`), for measuring and checking
//! `lockcheck analyze` at the scale of real test suites.
//!
//! ```text
//! cargo run --release --example gen_planted -- OUT [--format std|rapidbin|jsonl] [--events N]
//!     [--threads N] [--locks N] [--inversions K] [--seed S]
//! cargo run --release --example gen_planted -- /tmp/planted.std
//! /usr/bin/time -v target/release/lockcheck analyze /tmp/planted.std
//! ```
//!
//! `--random` writes instead the hostile random STD trace of the issue (200,000 random
//! acq/rel/req/fork/join events over 64 threads and 3000 locks by default; `--events`,
//! `--threads`, `--locks`, `--seed` apply).
//!
//! Prints the planted edges (`held -> acquired`, the ones the hierarchy must change) on stderr.

#[path = "../tests/support/planted.rs"]
mod planted;

use planted::{Format, PlantedConfig};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut out: Option<String> = None;
    let mut format: Option<Format> = None;
    let mut cfg = PlantedConfig::default();
    let mut random = false;
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match a.as_str() {
            "--format" => {
                format = Some(Format::parse(&val("--format")).expect("std, rapidbin or jsonl"))
            }
            "--events" => cfg.events = val("--events").parse().expect("a number"),
            "--threads" => cfg.threads = val("--threads").parse().expect("a number"),
            "--locks" => cfg.locks = val("--locks").parse().expect("a number"),
            "--inversions" => cfg.inversions = val("--inversions").parse().expect("a number"),
            "--random" => random = true,
            "--seed" => cfg.seed = val("--seed").parse().expect("a number"),
            "-h" | "--help" => {
                // The usage is the doc comment's first block.
                println!(
                    "gen_planted OUT [--format std|rapidbin|jsonl] [--events N] [--threads N] \
                     [--locks N] [--inversions K] [--seed S] [--random]"
                );
                return Ok(());
            }
            // Never taken for the output file: a mistyped flag would write a trace named after it.
            flag if flag.starts_with('-') => {
                eprintln!("gen_planted: unknown option `{flag}` (--help lists them)");
                std::process::exit(2);
            }
            _ if out.is_some() => {
                eprintln!(
                    "gen_planted: one output file only (`{a}` after `{}`)",
                    out.unwrap()
                );
                std::process::exit(2);
            }
            _ => out = Some(a),
        }
    }
    let out = out.unwrap_or_else(|| "planted.std".into());
    let format = format.unwrap_or_else(|| {
        if out.ends_with(".data") {
            Format::RapidBin
        } else if out.ends_with(".json") || out.ends_with(".jsonl") {
            Format::Jsonl
        } else {
            Format::Std
        }
    });
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
    if random {
        let d = PlantedConfig::default();
        let pick = |v: u64, default: u64, random_default: u64| {
            if v == default {
                random_default
            } else {
                v
            }
        };
        let events = pick(cfg.events, d.events, 200_000);
        let threads = pick(cfg.threads as u64, d.threads as u64, 64) as u32;
        let locks = pick(cfg.locks as u64, d.locks as u64, 3000) as u32;
        planted::write_random_std(cfg.seed, events, threads, locks, &mut file)?;
        eprintln!("gen_planted: wrote {events} random events to {out}");
        return Ok(());
    }
    let n = planted::write(&cfg, format, &mut file)?;
    eprintln!("gen_planted: wrote {n} events to {out}");
    for i in planted::inversions(&cfg) {
        eprintln!(
            "planted inversion: L{} -> L{} (order is L{} -> L{})",
            i.second, i.first, i.first, i.second
        );
    }
    Ok(())
}
