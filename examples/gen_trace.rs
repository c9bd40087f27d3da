//! Writes a synthetic lockcheck JSON Lines trace, for measuring `lockcheck analyze` on big inputs.
//!
//! ```text
//! cargo run --release --example gen_trace -- /tmp/big.jsonl 10000000
//! LOCKCHECK_REPORT_RSS=1 /usr/bin/time -v target/release/lockcheck analyze /tmp/big.jsonl
//! ```

use lockcheck_analyze::synth::{Synth, SynthConfig};
use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "trace.jsonl".into());
    let events: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let mut buf = Vec::with_capacity(256);
    let mut n = 0u64;
    for e in Synth::new(SynthConfig {
        events,
        ..Default::default()
    }) {
        buf.clear();
        e.write_line(&mut buf);
        out.write_all(&buf)?;
        n += 1;
    }
    out.flush()?;
    eprintln!("gen_trace: wrote {n} events to {path}");
    Ok(())
}
