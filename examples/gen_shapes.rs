//! Writes a planted trace from a second, independent generator (`tests/support/shapes.rs`):
//! threads interleaved event by event, nesting up to 8, inversions made once or often, nested or
//! alone, adjacent or far apart, 3-lock cycles, late forks, requests, and look-alikes that are no
//! deadlock. For checking that `lockcheck analyze` does not depend on the shape of `gen_planted`.
//!
//! ```text
//! cargo run --release --example gen_shapes -- OUT [--format std|rapidbin|jsonl] [--events N]
//!     [--threads N] [--locks N] [--depth D] [--inversions K] [--cycles3 K]
//!     [--rate once|N|percent] [--adjacent] [--nested] [--transitive] [--two-threads]
//!     [--out-of-order] [--late-fork] [--requests] [--lookalikes] [--names L|bare|word] [--seed S]
//! ```
//!
//! Writes beside OUT the file `OUT.expect` : one line per planted root cause
//! (`planted FROM TO SITE`, the inverted edge `held -> acquired` as the report names it) and per
//! look-alike edge (`lookalike FROM TO SITE`).

#[path = "../tests/support/shapes.rs"]
mod shapes;

use shapes::{Format, InvRate, Names, Shape};
use std::io::Write;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut out: Option<String> = None;
    let mut format = None;
    let mut s = Shape::default();
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        let num = |v: String| v.parse::<u64>().expect("a number");
        match a.as_str() {
            "--format" => {
                format = Some(match val("--format").as_str() {
                    "std" => Format::Std,
                    "rapidbin" | "data" => Format::RapidBin,
                    "jsonl" | "json" => Format::Jsonl,
                    f => panic!("unknown format {f}"),
                })
            }
            "--events" => s.events = num(val(&a)),
            "--threads" => s.threads = num(val(&a)) as u32,
            "--locks" => s.locks = num(val(&a)) as u32,
            "--depth" => s.max_depth = num(val(&a)) as u32,
            "--inversions" => s.inversions = num(val(&a)) as u32,
            "--cycles3" => s.cycles3 = num(val(&a)) as u32,
            "--rate" => {
                s.rate = match val(&a).as_str() {
                    "once" => InvRate::Once,
                    "percent" => InvRate::Percent,
                    n => InvRate::Times(n.parse().expect("once, percent or a number")),
                }
            }
            "--adjacent" => s.adjacent = true,
            "--nested" => s.nested = true,
            "--transitive" => s.transitive = true,
            "--two-threads" => s.two_threads = true,
            "--out-of-order" => s.out_of_order = true,
            "--late-fork" => s.late_fork = true,
            "--requests" => s.requests = true,
            "--lookalikes" => s.lookalikes = true,
            "--names" => {
                s.names = match val(&a).as_str() {
                    "bare" => Names::Bare,
                    "word" => Names::Word,
                    _ => Names::Prefixed,
                }
            }
            "--seed" => s.seed = num(val(&a)),
            flag if flag.starts_with('-') => {
                eprintln!("gen_shapes: unknown option `{flag}`");
                std::process::exit(2);
            }
            _ => out = Some(a),
        }
    }
    let out = out.unwrap_or_else(|| "shapes.std".into());
    let format = format.unwrap_or(if out.ends_with(".data") {
        Format::RapidBin
    } else if out.ends_with(".jsonl") {
        Format::Jsonl
    } else {
        Format::Std
    });
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&out)?);
    let plan = shapes::write(&s, format, &mut file)?;
    let mut exp = std::fs::File::create(format!("{out}.expect"))?;
    for (what, edges) in [("planted", &plan.planted), ("lookalike", &plan.lookalikes)] {
        for e in edges {
            writeln!(
                exp,
                "{what}\t{}\t{}\t{}",
                shapes::lock_name(&s, format, e.from),
                shapes::lock_name(&s, format, e.to),
                shapes::site_name(format, e.loc)
            )?;
        }
    }
    Ok(())
}
