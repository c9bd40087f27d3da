//! Baselines: the findings a project has accepted for now, by stable id. With
//! `lockcheck analyze --baseline FILE`, only findings whose id is not in the file fail the run;
//! `--write-baseline FILE` writes the current findings.
//!
//! ```json
//! { "version": 1,
//!   "findings": [ { "id": "0b4c9d64a97f92d0", "rule": "lockcheck/lock-order-inversion",
//!                   "classes": ["account"], "sites": ["examples/bank_transfer.rs:28:41"] } ] }
//! ```
//!
//! Only `id` is used for matching; `rule`, `classes` and `sites` are there for the reviewer of
//! the file. An id hashes the class keys and acquisition sites, so moving an acquisition to
//! another line makes it a new finding.

use crate::report::Report;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// Version of the baseline file format.
pub const BASELINE_VERSION: u32 = 1;

/// A baseline file.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    /// [`BASELINE_VERSION`].
    pub version: u32,
    /// The accepted findings, by id.
    pub findings: Vec<BaselineEntry>,
}

/// One accepted finding.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct BaselineEntry {
    /// The finding's id.
    pub id: String,
    /// Its rule id.
    #[serde(default)]
    pub rule: String,
    /// Its class keys (for the reader).
    #[serde(default)]
    pub classes: Vec<String>,
    /// Its acquisition sites (for the reader).
    #[serde(default)]
    pub sites: Vec<String>,
}

impl Baseline {
    /// The findings of `report` (violations, baselined or not; suppressed ones need no baseline).
    pub fn from_report(report: &Report) -> Baseline {
        let mut findings: Vec<BaselineEntry> = report
            .violations
            .iter()
            .map(|v| {
                let classes: BTreeSet<String> = v.locks.iter().map(|l| l.class.clone()).collect();
                let sites: BTreeSet<String> =
                    v.edges.iter().filter_map(|e| e.site.clone()).collect();
                BaselineEntry {
                    id: v.id.clone(),
                    rule: v.rule.clone(),
                    classes: classes.into_iter().collect(),
                    sites: sites.into_iter().collect(),
                }
            })
            .collect();
        findings.sort_by(|a, b| a.id.cmp(&b.id));
        findings.dedup_by(|a, b| a.id == b.id);
        Baseline {
            version: BASELINE_VERSION,
            findings,
        }
    }

    /// Reads a baseline file; errors start with the path.
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let b: Baseline = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a lockcheck baseline: {e}", path.display()))?;
        if b.version != BASELINE_VERSION {
            return Err(format!(
                "{}: unsupported baseline version {} (this lockcheck reads {BASELINE_VERSION})",
                path.display(),
                b.version
            ));
        }
        Ok(b)
    }

    /// The file's text (pretty JSON with a final newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a baseline serializes");
        s.push('\n');
        s
    }

    /// Whether the finding `id` is accepted.
    pub fn contains(&self, id: &str) -> bool {
        self.findings.iter().any(|f| f.id.eq_ignore_ascii_case(id))
    }
}
