//! Throughput of `lockcheck analyze` on synthetic traces: replaying events into the model, the
//! whole analysis, and the trace readers alone (parse only, per format).
//!
//! For the 5-million-event figures (events/s, MB/s, peak RSS) see BENCHMARKS.md, "Analyzer
//! (release build)": `examples/gen_planted.rs` writes the traces, `LOCKCHECK_PHASES=parse` times the
//! readers on them.

#[path = "../tests/support/planted.rs"]
mod planted;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lockcheck_analyze::model::ModelBuilder;
use lockcheck_analyze::read::{InputFormat, TraceReader};
use lockcheck_analyze::synth::{Synth, SynthConfig};
use lockcheck_analyze::{analyze_model, Options};
use lockcheck_core::trace::Event;

const EVENTS: u64 = 200_000;

/// Events of the planted traces of the parse-only benches.
const PARSE_EVENTS: u64 = 500_000;

fn events() -> Vec<Event> {
    Synth::new(SynthConfig {
        events: EVENTS,
        ..Default::default()
    })
    .collect()
}

fn bench(c: &mut Criterion) {
    let evs = events();
    let mut bytes = Vec::new();
    for e in &evs {
        e.write_line(&mut bytes);
    }
    let mut g = c.benchmark_group("analyze");
    g.sample_size(10);
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("replay_only", |b| {
        b.iter(|| {
            let mut mb = ModelBuilder::new();
            mb.begin_trace("synth");
            for e in &evs {
                mb.event(e);
            }
            mb.finish()
        })
    });
    g.bench_function("events", |b| {
        b.iter(|| {
            let mut mb = ModelBuilder::new();
            mb.begin_trace("synth");
            for e in &evs {
                mb.event(e);
            }
            analyze_model(&mb.finish(), &Options::default())
        })
    });
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("json_lines", |b| {
        b.iter_batched(
            || bytes.clone(),
            |bytes| {
                let reader = TraceReader::from_reader(
                    "synth.jsonl",
                    Box::new(std::io::Cursor::new(bytes)),
                    InputFormat::Json,
                );
                let mut mb = ModelBuilder::new();
                mb.begin_trace("synth.jsonl");
                for e in reader {
                    mb.event(&e.expect("synthetic events parse"));
                }
                analyze_model(&mb.finish(), &Options::default())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The planted trace (see `tests/support/planted.rs`) in `format`, in memory.
fn planted_bytes(format: InputFormat) -> Vec<u8> {
    let cfg = planted::PlantedConfig {
        events: PARSE_EVENTS,
        ..Default::default()
    };
    let mut out = Vec::new();
    let written = match format {
        InputFormat::Std => planted::Format::Std,
        InputFormat::RapidBin => planted::Format::RapidBin,
        InputFormat::Json | InputFormat::Lct => planted::Format::Jsonl,
    };
    planted::write(&cfg, written, &mut out).expect("writing to memory");
    if format == InputFormat::Lct {
        let mut lct = lockcheck_core::lct::MAGIC.to_vec();
        let reader = TraceReader::from_reader(
            "planted.jsonl",
            Box::new(std::io::Cursor::new(out)),
            InputFormat::Json,
        );
        for e in reader {
            lockcheck_core::lct::encode(&e.expect("the planted trace parses"), &mut lct);
        }
        out = lct;
    }
    out
}

/// Parse only: every event of the planted trace decoded, nothing replayed. Two throughputs per
/// format: events/s (`events`) and bytes/s (`bytes`).
fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.sample_size(10);
    for (name, format) in [
        ("std", InputFormat::Std),
        ("rapid_bin", InputFormat::RapidBin),
        ("json_lines", InputFormat::Json),
        ("lct", InputFormat::Lct),
    ] {
        let bytes = planted_bytes(format);
        let count =
            TraceReader::from_reader(name, Box::new(std::io::Cursor::new(bytes.clone())), format)
                .count() as u64;
        let run = |bytes: Vec<u8>| {
            let reader =
                TraceReader::from_reader(name, Box::new(std::io::Cursor::new(bytes)), format);
            let mut n = 0u64;
            for e in reader {
                std::hint::black_box(e.expect("the planted trace parses"));
                n += 1;
            }
            n
        };
        for (unit, throughput) in [
            ("events", Throughput::Elements(count)),
            ("bytes", Throughput::Bytes(bytes.len() as u64)),
        ] {
            g.throughput(throughput);
            g.bench_function(format!("{name}/{unit}"), |b| {
                b.iter_batched(|| bytes.clone(), run, BatchSize::LargeInput)
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench, parse);
criterion_main!(benches);
