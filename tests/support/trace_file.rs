//! Trace files of the recording tests: a scratch path, and a trace read back with the analyzer's
//! reader (whatever format the file is in). One copy for every test binary that records.
#![allow(dead_code)]

use lockcheck_core::trace::Event;
use std::collections::BTreeSet;
use std::path::Path;

#[path = "scratch.rs"]
mod scratch;
#[allow(unused_imports)]
pub use scratch::{Scratch, ScratchFile};

/// `name` in a scratch directory of its own (`lockcheck-<test binary>-XXXXXX` in the system's
/// temp directory), removed with everything in it when the returned path is dropped (kept if the
/// test fails: [`ScratchFile`]).
pub fn tmp(name: &str) -> ScratchFile {
    let exe = std::env::current_exe().unwrap();
    let binary = exe.file_stem().unwrap().to_string_lossy().into_owned();
    // (The binary's name without cargo's hash suffix.)
    let tag = binary.rsplit_once('-').map_or(binary.as_str(), |(b, _)| b);
    ScratchFile::new(tag, name)
}

/// Every event of the trace at `path`; panics with the reader's error if it does not read.
pub fn events(path: &Path) -> Vec<Event> {
    lockcheck_analyze::read::TraceReader::open(path, None)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The lock number of the first `lock` event of class `key` (its `class` event's number);
/// panics naming what is missing.
pub fn lock_of(ev: &[Event], key: &str) -> u64 {
    let c = ev
        .iter()
        .find_map(|e| match e {
            Event::Class { c, key: k, .. } if k == key => Some(*c),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no class {key}"));
    ev.iter()
        .find_map(|e| match e {
            Event::Lock { l, c: lc, .. } if *lc == c => Some(*l),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no lock of {key}"))
}

/// The kind and class keys of each violation `lockcheck analyze` finds in `trace` that involves
/// `class`.
pub fn findings_involving(trace: &Path, class: &str) -> Vec<(String, BTreeSet<String>)> {
    let report = lockcheck_analyze::analyze(&[trace.to_path_buf()], &Default::default()).unwrap();
    report
        .violations
        .iter()
        .map(|v| {
            let classes: BTreeSet<String> = v.locks.iter().map(|l| l.class.clone()).collect();
            (v.kind.clone(), classes)
        })
        .filter(|(_, classes)| classes.contains(class))
        .collect()
}

/// The kinds of the analyzer's findings on the trace at `path` that name lock class `class`,
/// with `+retried` where an edge is a retried try (`retried_try`).
pub fn findings_naming(path: &Path, class: &str) -> Vec<String> {
    let report = lockcheck_analyze::analyze(&[path.to_path_buf()], &Default::default()).unwrap();
    report
        .violations
        .iter()
        .filter(|v| v.locks.iter().any(|l| l.class == class))
        .map(|v| {
            let retried = v.edges.iter().any(|e| e.retried_try);
            format!("{}{}", v.kind, if retried { "+retried" } else { "" })
        })
        .collect()
}
