//! `lockcheck analyze` on planted traces: threads nesting locks in one consistent order with K
//! planted AB-BA inversions (`tests/support/planted.rs`, the generator behind
//! `examples/gen_planted.rs`). One violation per planted root cause, a change set that is exactly
//! the planted edges, a complete search, in every input format; and the property behind it: K
//! inverted edges planted into a random DAG of nested acquisitions are exactly the change set.

mod common;
#[path = "support/planted.rs"]
mod planted;

#[path = "support/scratch.rs"]
mod scratch;

use common::{analyze_json, lockcheck};
use lockcheck_analyze::model::ModelBuilder;
use lockcheck_analyze::{analyze_model, Options};
use lockcheck_core::trace::{Event, How, LockKind, Mode, FORMAT_VERSION};
use planted::{Format, PlantedConfig};
use proptest::prelude::*;
use scratch::{Scratch, ScratchFile};
use std::collections::BTreeSet;

fn write_planted(cfg: &PlantedConfig, format: Format, ext: &str) -> ScratchFile {
    let path = ScratchFile::new(
        &format!("planted-{}-{}", cfg.seed, cfg.inversions),
        &format!("planted.{ext}"),
    );
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    planted::write(cfg, format, &mut f).unwrap();
    path
}

fn planted_edges(cfg: &PlantedConfig) -> BTreeSet<(String, String)> {
    planted::inversions(cfg)
        .iter()
        .map(|i| (format!("L{}", i.second), format!("L{}", i.first)))
        .collect()
}

fn check_planted(cfg: PlantedConfig) {
    let want = planted_edges(&cfg);
    for (format, ext) in [
        (Format::Std, "std"),
        (Format::RapidBin, "data"),
        (Format::Jsonl, "jsonl"),
    ] {
        let path = write_planted(&cfg, format, ext);
        let run = analyze_json(&[path.to_path_buf()], &[]);
        assert_eq!(run.code, Some(1), "{ext}: {}", run.stderr);
        let r = run.json();
        assert_eq!(r["summary"]["complete"], true, "{ext}: {:?}", r["warnings"]);
        let vs = r["violations"].as_array().unwrap();
        assert_eq!(vs.len(), want.len(), "{ext}: {:#?}", vs);
        // Each violation names exactly one planted edge to change.
        let mut named = BTreeSet::new();
        for v in vs {
            let change = v["root_cause"]["change"].as_array().unwrap();
            assert_eq!(change.len(), 1, "{ext}: {v:#}");
            let e = &change[0];
            named.insert((
                e["from"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap().to_string(),
            ));
            // The representative is the shortest valid cycle: the AB-BA pair itself.
            assert_eq!(v["locks"].as_array().unwrap().len(), 2, "{ext}: {v:#}");
            assert!(v["root_cause"]["cycles"].as_u64().unwrap() >= 1);
        }
        assert_eq!(named, want, "{ext}");
        let removed: BTreeSet<(String, String)> = r["hierarchy"]["removed_edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["from"].as_str().unwrap().to_string(),
                    e["to"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(removed, want, "{ext}: the change set is the planted edges");
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn planted_inversions_are_one_violation_each_in_every_format() {
    check_planted(PlantedConfig {
        events: 100_000,
        ..Default::default()
    });
}

#[test]
fn planted_inversions_other_seeds_and_counts() {
    for (seed, inversions) in [(7, 1), (42, 5)] {
        check_planted(PlantedConfig {
            events: 60_000,
            threads: 8,
            locks: 120,
            inversions,
            seed,
            ..Default::default()
        });
    }
}

#[test]
fn no_planted_inversion_is_clean_and_complete() {
    let cfg = PlantedConfig {
        events: 60_000,
        inversions: 0,
        ..Default::default()
    };
    let path = write_planted(&cfg, Format::Std, "std");
    let run = analyze_json(&[path.to_path_buf()], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["summary"]["complete"], true);
    assert_eq!(r["hierarchy"]["removed_edges"].as_array().unwrap().len(), 0);
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_symmetric_two_cycle_is_one_violation_naming_both_edges() {
    let dir = Scratch::new("sym");
    let path = dir.join("sym.std");
    std::fs::write(
        &path,
        "T1|acq(A)|1\nT1|acq(B)|2\nT1|rel(B)|3\nT1|rel(A)|4\nT2|acq(B)|5\nT2|acq(A)|6\nT2|rel(A)|7\nT2|rel(B)|8\n",
    )
    .unwrap();
    let run = analyze_json(&[path.to_path_buf()], &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r = run.json();
    let vs = r["violations"].as_array().unwrap();
    assert_eq!(vs.len(), 1, "{vs:#?}");
    assert_eq!(
        vs[0]["root_cause"]["change"].as_array().unwrap().len(),
        2,
        "{:#}",
        vs[0]
    );
    // Look-alike: the same two orders on one thread are no violation.
    std::fs::write(
        &path,
        "T1|acq(A)|1\nT1|acq(B)|2\nT1|rel(B)|3\nT1|rel(A)|4\nT1|acq(B)|5\nT1|acq(A)|6\nT1|rel(A)|7\nT1|rel(B)|8\n",
    )
    .unwrap();
    let run = analyze_json(&[path.to_path_buf()], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn help_documents_the_exit_codes() {
    let run = lockcheck(["analyze", "--help"]);
    assert!(
        run.stdout.contains("3  no violation found"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("--allow-incomplete"), "{}", run.stdout);
    assert!(run.stdout.contains("--max-steps"), "{}", run.stdout);
}

/// Events of nested sections: each `(thread, locks)` acquires in order, releases in reverse.
fn events_of(locks: u64, sections: &[(u64, Vec<u64>)]) -> Vec<Event> {
    let mut out = vec![Event::Header {
        version: FORMAT_VERSION,
        pid: 1,
        program: "fas".into(),
        start_unix_ms: 0,
        hold_resolution_ns: 0,
    }];
    for l in 0..locks {
        out.push(Event::Class {
            c: l as u32 + 1,
            key: format!("L{l}"),
            kind: LockKind::Mutex,
        });
        out.push(Event::Lock {
            l: l + 1,
            c: l as u32 + 1,
            permits: None,
        });
    }
    for (t, ls) in sections {
        for &l in ls {
            out.push(Event::Acquire {
                t: *t,
                l: l + 1,
                m: Mode::Exclusive,
                how: How::Blocking,
                s: None,
                wait_ns: 0,
            });
        }
        for &l in ls.iter().rev() {
            out.push(Event::Release {
                t: *t,
                l: l + 1,
                hold_ns: 0,
            });
        }
    }
    out
}

proptest! {
    // 48 cases by default; `PROPTEST_CASES=2000` for a deeper run (`with_cases` alone would
    // ignore the variable).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48)
    ))]

    /// A random DAG of nested acquisitions (each section repeated 10 times, on threads 1-4, in
    /// the order of a random permutation) plus K inverted pairs made once each on threads of
    /// their own: the suggested change set is exactly the K planted edges, and there is one
    /// violation per planted edge.
    #[test]
    fn planted_inverted_edges_are_exactly_the_change_set(
        n in 6u64..40,
        perm_seed in any::<u64>(),
        sections in proptest::collection::vec((1u64..5, proptest::collection::vec(any::<u64>(), 2..5)), 1..40),
        picks in proptest::collection::vec((any::<u64>(), any::<u64>()), 1..4),
    ) {
        // rank: a permutation of 0..n.
        let mut order: Vec<u64> = (0..n).collect();
        let mut x = perm_seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut rank = vec![0usize; n as usize];
        for (p, &l) in order.iter().enumerate() { rank[l as usize] = p; }
        let mut secs: Vec<(u64, Vec<u64>)> = Vec::new();
        for (t, ls) in &sections {
            let mut ls: Vec<u64> = ls.iter().map(|l| l % n).collect();
            ls.sort_unstable(); ls.dedup();
            if ls.len() < 2 { continue; }
            ls.sort_by_key(|&l| rank[l as usize]);
            for _ in 0..10 { secs.push((*t, ls.clone())); }
        }
        // Planted pairs on disjoint locks.
        let mut used = BTreeSet::new();
        let mut planted = BTreeSet::new();
        for (k, &(a, b)) in picks.iter().enumerate() {
            let (a, b) = (a % n, b % n);
            if a == b || used.contains(&a) || used.contains(&b) { continue; }
            used.insert(a); used.insert(b);
            let (first, second) = if rank[a as usize] < rank[b as usize] { (a, b) } else { (b, a) };
            for _ in 0..10 { secs.push((1, vec![first, second])); }
            secs.push((10 + k as u64, vec![second, first]));
            planted.insert((format!("L{second}"), format!("L{first}")));
        }
        let mut b = ModelBuilder::new();
        b.begin_trace("fas.json");
        for e in events_of(n, &secs) { b.event(&e); }
        let report = analyze_model(&b.finish(), &Options::default());
        let removed: BTreeSet<(String, String)> = report
            .hierarchy
            .removed_edges
            .iter()
            .map(|e| (e.from.clone(), e.to.clone()))
            .collect();
        prop_assert_eq!(&removed, &planted);
        prop_assert!(report.summary.complete);
        prop_assert_eq!(report.violations.len(), planted.len());
        for v in &report.violations {
            let rc = v.root_cause.as_ref().expect("a root cause");
            prop_assert_eq!(rc.change.len(), 1);
            prop_assert!(planted.contains(&(rc.change[0].from.clone(), rc.change[0].to.clone())));
        }
    }
}
