//! `lockcheck.toml`: reviewed findings to accept (`[[suppress]]`), the intended lock hierarchy
//! (`[hierarchy]`), and the runtime's timeout policies (`[wait_timeout]`, read by the runtime
//! through `LOCKCHECK_POLICY`; the analyzer only accepts the table).
//!
//! ```toml
//! [[suppress]]
//! classes = ["accounts", "src/ledger.rs:14:20"]   # every listed class is in the finding
//! sites = ["src/audit.rs:41"]                     # every listed site is one of its sites
//! reason = "the audit runs before the transfer threads start"
//!
//! [hierarchy]          # acquire in strictly increasing level
//! accounts = 1
//! "src/ledger.rs:14:20" = 2
//!
//! [wait_timeout]       # LOCKCHECK_POLICY=lockcheck.toml makes the runtime enforce these
//! accounts = "10ms"
//! ```
//!
//! A suppression entry needs a `reason` and at least one of `classes`, `sites`, `id` (a finding
//! id) and may restrict itself to one `rule`. A site pattern matches a site when it is equal to it,
//! to its `file:line`, or to its file, or is a suffix of one of those after a `/` (so `src/a.rs:3`
//! matches the absolute `/home/ci/repo/src/a.rs:3:9`).

use crate::hierarchy::file_line;
use crate::report::Violation;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One `[[suppress]]` entry.
#[derive(Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    /// Class keys that must all be among the finding's classes.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Site patterns that must each match one of the finding's sites.
    #[serde(default)]
    pub sites: Vec<String>,
    /// A finding id (the 16 hex digits of the report).
    #[serde(default)]
    pub id: Option<String>,
    /// Only findings of this rule (`lockcheck/hierarchy-violation`, or without the prefix).
    #[serde(default)]
    pub rule: Option<String>,
    /// Why the finding is accepted (required, shown in verbose output).
    #[serde(default)]
    pub reason: String,
}

/// The analyzer's part of `lockcheck.toml`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// Accepted findings, in file order.
    pub suppress: Vec<Suppression>,
    /// The declared hierarchy: class key -> level.
    pub hierarchy: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    suppress: Vec<Suppression>,
    #[serde(default)]
    hierarchy: BTreeMap<String, i64>,
    #[serde(default)]
    #[allow(dead_code)] // The runtime's table: accepted so that one file serves both.
    wait_timeout: Option<toml::Table>,
}

impl Config {
    /// Parses the text of a `lockcheck.toml`. Errors name the problem (and, for syntax, where).
    pub fn parse(text: &str) -> Result<Config, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        for (i, s) in file.suppress.iter().enumerate() {
            let n = i + 1;
            if s.reason.trim().is_empty() {
                return Err(format!(
                    "[[suppress]] entry {n}: a `reason` is required (why is this finding accepted?)"
                ));
            }
            if s.classes.is_empty() && s.sites.is_empty() && s.id.is_none() {
                return Err(format!(
                    "[[suppress]] entry {n}: give `classes`, `sites` or `id` (an entry matching everything would hide every finding)"
                ));
            }
            if let Some(r) = &s.rule {
                if crate::rules::lookup(r)
                    .is_none_or(|r| r.category != crate::rules::Category::Finding)
                {
                    return Err(format!(
                        "[[suppress]] entry {n}: unknown rule `{r}` (see `lockcheck explain`)"
                    ));
                }
            }
        }
        Ok(Config {
            suppress: file.suppress,
            hierarchy: file.hierarchy,
        })
    }

    /// Reads and parses a file; errors start with the path.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The first entry (0-based index) that accepts `v`.
    pub fn suppression_for(&self, v: &Violation) -> Option<(usize, &Suppression)> {
        self.suppress.iter().enumerate().find(|(_, s)| s.matches(v))
    }
}

impl Suppression {
    /// Whether this entry accepts the finding `v`.
    pub fn matches(&self, v: &Violation) -> bool {
        if let Some(rule) = &self.rule {
            match crate::rules::lookup(rule) {
                Some(r) if r.id == v.rule => {}
                _ => return false,
            }
        }
        if let Some(id) = &self.id {
            if !id.eq_ignore_ascii_case(&v.id) {
                return false;
            }
        }
        let classes_ok = self
            .classes
            .iter()
            .all(|c| v.locks.iter().any(|l| &l.class == c));
        let sites: Vec<&str> = v
            .edges
            .iter()
            .flat_map(|e| {
                e.site
                    .as_deref()
                    .into_iter()
                    .chain(e.held.iter().filter_map(|h| h.site.as_deref()))
            })
            .collect();
        let sites_ok = self
            .sites
            .iter()
            .all(|p| sites.iter().any(|s| site_matches(p, s)));
        classes_ok && sites_ok
    }
}

/// Whether the pattern `pattern` names the site `site` (see the module docs).
pub fn site_matches(pattern: &str, site: &str) -> bool {
    let line = file_line(site);
    let file = file_of(site);
    [site, line.as_str(), file].iter().any(|c| {
        *c == pattern
            || (c.len() > pattern.len()
                && c.ends_with(pattern)
                && c.as_bytes()[c.len() - pattern.len() - 1] == b'/')
    })
}

/// The file of a `file:line:col` or `file:line` location (other locations unchanged).
pub fn file_of(loc: &str) -> &str {
    let mut s = loc;
    for _ in 0..2 {
        match s.rsplit_once(':') {
            Some((head, tail)) if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) => {
                s = head
            }
            _ => break,
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_match_by_location_line_file_and_suffix() {
        assert!(site_matches("src/a.rs:3:9", "src/a.rs:3:9"));
        assert!(site_matches("src/a.rs:3", "src/a.rs:3:9"));
        assert!(site_matches("src/a.rs", "src/a.rs:3:9"));
        assert!(site_matches("src/a.rs:3", "/home/ci/repo/src/a.rs:3:9"));
        assert!(!site_matches("a.rs:3", "src/ba.rs:3:9"));
        assert!(!site_matches("src/a.rs:4", "src/a.rs:3:9"));
        assert!(site_matches("loc 42", "loc 42"));
        assert_eq!(file_of("C:/x/a.rs:1:2"), "C:/x/a.rs");
    }

    #[test]
    fn entries_need_a_reason_and_a_selector() {
        let e = Config::parse("[[suppress]]\nclasses = [\"a\"]\n").unwrap_err();
        assert!(e.contains("reason"), "{e}");
        let e = Config::parse("[[suppress]]\nreason = \"x\"\n").unwrap_err();
        assert!(e.contains("classes"), "{e}");
        let e = Config::parse("[[supress]]\nreason = \"x\"\n").unwrap_err();
        assert!(e.contains("supress"), "{e}");
        let c = Config::parse(
            "[[suppress]]\nsites = [\"a.rs:1\"]\nreason = \"ok\"\n[hierarchy]\na = 1\n[wait_timeout]\na = \"5ms\"\n",
        )
        .unwrap();
        assert_eq!(c.suppress.len(), 1);
        assert_eq!(c.hierarchy["a"], 1);
    }
}
