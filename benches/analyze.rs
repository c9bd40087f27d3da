//! Throughput of `lockcheck analyze` on synthetic traces: replaying events into the model and the
//! whole analysis, from in-memory events and from JSON Lines bytes.
//!
//! For the 10-million-event figures (events/s, MB/s, peak RSS) see `examples/gen_trace.rs` and
//! `docs/analyze.md`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lockcheck_analyze::model::ModelBuilder;
use lockcheck_analyze::read::{InputFormat, TraceReader};
use lockcheck_analyze::synth::{Synth, SynthConfig};
use lockcheck_analyze::{analyze_model, Options};
use lockcheck_core::trace::Event;

const EVENTS: u64 = 200_000;

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

criterion_group!(benches, bench);
criterion_main!(benches);
