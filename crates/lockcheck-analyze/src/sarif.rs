//! SARIF 2.1.0 output (`--format sarif`), for code-scanning tools (GitHub's upload-sarif and
//! others).
//!
//! - One `result` per finding, with a stable `ruleId` per kind (see [`crate::rules`]), level
//!   `error`; suppressed findings are results too, with a `suppressions` entry holding the reason.
//! - `locations`: the acquisition that closes the cycle (the first edge's site); every edge's
//!   acquisition site and the sites where its held locks were taken are `relatedLocations`, and
//!   the lockdep-style scenario is a `codeFlow` with one `threadFlow` per thread.
//! - Paths: a site `file:line:col` becomes `artifactLocation.uri` relative to the repository root
//!   (`uriBaseId` `%SRCROOT%`): relative paths stay as they are (Rust records paths of the
//!   workspace's own crates relative to its root), absolute ones under `repo_root` are made
//!   relative, other absolute ones become `file://` URIs. A site without a file and line (RAPID's
//!   `loc 42`) becomes a logical location.
//! - `partialFingerprints.lockcheckFindingId/v1` is the finding's id: a hash of its class keys and
//!   acquisition sites, never of thread or lock numbers, so the same finding is the same alert
//!   in every run.
//! - With a baseline, `baselineState` is `unchanged` for a baselined finding and `new` otherwise.

use crate::report::{EdgeReport, Report, Violation};
use crate::rules;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The `$schema` written at the top of the log.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The key of the fingerprint in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "lockcheckFindingId/v1";

/// Options of the SARIF writer.
#[derive(Debug, Clone, Default)]
pub struct SarifOptions {
    /// Absolute paths under this directory are written relative to it.
    pub repo_root: Option<PathBuf>,
    /// Whether a baseline was given (then every result has a `baselineState`).
    pub with_baseline: bool,
}

/// A parsed acquisition site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteLocation {
    /// `file:line[:col]`, with the file as a URI reference and whether it is relative to the
    /// repository root.
    Physical {
        /// URI reference of the file.
        uri: String,
        /// Relative to `%SRCROOT%`.
        relative: bool,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: Option<u64>,
    },
    /// Anything else (`loc 42`).
    Logical(String),
}

/// Parses a site and places its file relative to `repo_root`.
pub fn site_location(site: &str, repo_root: Option<&Path>) -> SiteLocation {
    fn num(s: &str) -> Option<()> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(())
    }
    let (file, line, column): (String, Option<u64>, Option<u64>) =
        match site.rsplitn(3, ':').collect::<Vec<_>>().as_slice() {
            [c, l, f] if num(c).is_some() && num(l).is_some() => {
                (f.to_string(), l.parse().ok(), c.parse().ok())
            }
            // `C:/x.rs:3` splits as ["3", "/x.rs", "C"]: a drive letter, no column.
            [l, rest, drive] if num(l).is_some() && drive.len() == 1 => {
                (format!("{drive}:{rest}"), l.parse().ok(), None)
            }
            [l, f] if num(l).is_some() => (f.to_string(), l.parse().ok(), None),
            _ => (String::new(), None, None),
        };
    let (Some(line), false) = (line.filter(|&l| l > 0), file.is_empty()) else {
        return SiteLocation::Logical(site.to_string());
    };
    let column = column.filter(|&c| c > 0);
    let normalized = file.replace('\\', "/");
    let is_abs = normalized.starts_with('/')
        || (normalized.len() > 2
            && normalized.as_bytes()[1] == b':'
            && normalized.as_bytes()[0].is_ascii_alphabetic());
    if !is_abs {
        let rel = normalized.trim_start_matches("./");
        return SiteLocation::Physical {
            uri: encode(rel),
            relative: true,
            line,
            column,
        };
    }
    if let Some(root) = repo_root {
        let root = root.to_string_lossy().replace('\\', "/");
        let root = root.trim_end_matches('/');
        if let Some(rest) = normalized.strip_prefix(root) {
            if let Some(rest) = rest.strip_prefix('/') {
                return SiteLocation::Physical {
                    uri: encode(rest),
                    relative: true,
                    line,
                    column,
                };
            }
        }
    }
    let path = if normalized.starts_with('/') {
        normalized
    } else {
        format!("/{normalized}")
    };
    SiteLocation::Physical {
        uri: format!("file://{}", encode(&path)),
        relative: false,
        line,
        column,
    }
}

/// Percent-encodes what may not appear in a URI path.
fn encode(path: &str) -> String {
    let mut s = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'/'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'@' => s.push(b as char),
            _ => s.push_str(&format!("%{b:02X}")),
        }
    }
    s
}

fn location(site: Option<&str>, message: Option<String>, opts: &SarifOptions) -> Value {
    let mut loc = Map::new();
    match site.map(|s| site_location(s, opts.repo_root.as_deref())) {
        Some(SiteLocation::Physical {
            uri,
            relative,
            line,
            column,
        }) => {
            let mut artifact = Map::new();
            artifact.insert("uri".into(), json!(uri));
            if relative {
                artifact.insert("uriBaseId".into(), json!("%SRCROOT%"));
            }
            let mut region = Map::new();
            region.insert("startLine".into(), json!(line));
            if let Some(c) = column {
                region.insert("startColumn".into(), json!(c));
            }
            loc.insert(
                "physicalLocation".into(),
                json!({ "artifactLocation": artifact, "region": region }),
            );
        }
        Some(SiteLocation::Logical(name)) => {
            loc.insert(
                "logicalLocations".into(),
                json!([{ "name": name, "kind": "location" }]),
            );
        }
        None => {
            loc.insert(
                "logicalLocations".into(),
                json!([{ "name": "unknown site", "kind": "location" }]),
            );
        }
    }
    if let Some(m) = message {
        loc.insert("message".into(), json!({ "text": m }));
    }
    Value::Object(loc)
}

fn held_phrase(e: &EdgeReport) -> String {
    let held: Vec<String> = e
        .held
        .iter()
        .map(|h| format!("{} ({})", h.lock, h.mode))
        .collect();
    held.join(", ")
}

/// `title` as a sentence: its first letter upper case, a full stop at the end.
fn sentence(title: &str) -> String {
    let mut c = title.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

/// The result's message.
pub fn message(v: &Violation) -> String {
    if v.kind == crate::condvar_wait::KIND {
        // No cycle of acquisitions: the title names the wait and the notifier's acquisition,
        // which the edge sentences below would misname.
        return sentence(&crate::report::title(v));
    }
    let names: Vec<&str> = v.locks.iter().map(|l| l.name.as_str()).collect();
    let mut m = if v.kind == "hierarchy-violation" {
        let levels = v.declared_levels.clone().unwrap_or_default();
        format!(
            "Lock `{}` (level {}) acquired while holding `{}` (level {}), against the hierarchy declared in lockcheck.toml.",
            v.locks.get(1).map(|l| l.name.as_str()).unwrap_or("?"),
            levels.get(1).copied().unwrap_or_default(),
            v.locks.first().map(|l| l.name.as_str()).unwrap_or("?"),
            levels.first().copied().unwrap_or_default(),
        )
    } else if v.kind != "lock-order-inversion" || v.locks.iter().any(|l| l.kind == "end") {
        // Self-deadlocks, recursive reads, the condvar and fork findings, a task's hold across
        // an await, a join deadlock: the text report's title, not "inversion between" words
        // that would misname them.
        sentence(&crate::report::title(v))
    } else if crate::report::is_permit_nest(v) {
        format!(
            "Lock-order inversion (possible deadlock) through the permits of `{}`: {} holders each request permits while holding some, and each can wait for permits only the others give back ({} level).",
            v.locks[0].name,
            v.edges.len(),
            v.level
        )
    } else {
        format!(
            "Lock-order inversion (possible deadlock) between {} ({} level).",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            v.level
        )
    };
    if let Some(rc) = &v.root_cause {
        let edges: Vec<String> = rc
            .change
            .iter()
            .map(|c| format!("`{}` acquired while holding `{}`", c.to, c.from))
            .collect();
        m.push_str(&format!(
            " Root cause: {} (change {}); it closes {}{} cycle(s), the shortest is shown.",
            edges.join(" or "),
            if rc.change.len() == 1 {
                "it"
            } else {
                "one of them"
            },
            if rc.cycles_exhaustive {
                ""
            } else {
                "at least "
            },
            rc.cycles
        ));
    }
    for e in &v.edges {
        m.push_str(&format!(
            " Thread `{}` acquires `{}` at {} while holding {}.",
            e.thread,
            e.acquired,
            e.site.as_deref().unwrap_or("an unknown site"),
            held_phrase(e)
        ));
    }
    m
}

fn result(v: &Violation, suppression: Option<&str>, opts: &SarifOptions) -> Value {
    let rule_index = rules::findings().position(|r| r.id == v.rule).unwrap_or(0);
    let first = v.edges.first();
    let primary = location(first.and_then(|e| e.site.as_deref()), None, opts);
    let mut related = Vec::new();
    for e in &v.edges {
        let mut loc = location(
            e.site.as_deref(),
            Some(format!(
                "`{}` acquires `{}` ({}) while holding {}",
                e.thread,
                e.acquired,
                e.mode,
                held_phrase(e)
            )),
            opts,
        );
        loc["id"] = json!(related.len());
        related.push(loc);
        for h in e.held.iter().filter(|h| *h.lock == *e.from) {
            let mut loc = location(
                h.site.as_deref(),
                Some(format!("`{}` acquired `{}` here", e.thread, h.lock)),
                opts,
            );
            loc["id"] = json!(related.len());
            related.push(loc);
        }
    }
    // The root cause's other sites (the places to change), after the cycle's own locations.
    if let Some(rc) = &v.root_cause {
        let shown: std::collections::HashSet<&str> =
            v.edges.iter().filter_map(|e| e.site.as_deref()).collect();
        for c in &rc.change {
            for site in c.sites.iter().filter(|s| !shown.contains(s.as_str())) {
                let mut loc = location(
                    Some(site),
                    Some(format!(
                        "root cause: `{}` acquired while holding `{}`",
                        c.to, c.from
                    )),
                    opts,
                );
                loc["id"] = json!(related.len());
                related.push(loc);
            }
        }
    }
    let thread_flows: Vec<Value> = v
        .edges
        .iter()
        .map(|e| {
            let held_site = e
                .held
                .iter()
                .find(|h| *h.lock == *e.from)
                .and_then(|h| h.site.as_deref());
            json!({
                "message": { "text": format!("thread `{}`", e.thread) },
                "locations": [
                    { "location": location(held_site, Some(format!("`{}`: lock({})", e.thread, e.from)), opts) },
                    { "location": location(e.site.as_deref(), Some(format!("`{}`: lock({}) blocks", e.thread, e.acquired)), opts) }
                ]
            })
        })
        .collect();
    let mut r = json!({
        "ruleId": v.rule,
        "ruleIndex": rule_index,
        "level": "error",
        "message": { "text": message(v) },
        "locations": [primary],
        "relatedLocations": related,
        "codeFlows": [{
            "message": { "text": "Possible unsafe locking scenario" },
            "threadFlows": thread_flows
        }],
        "partialFingerprints": { FINGERPRINT_KEY: v.id },
        "properties": {
            "id": v.id,
            "level": v.level,
            "classes": v.locks.iter().map(|l| l.class.clone()).collect::<Vec<_>>(),
            "threads": v.edges.iter().map(|e| e.thread.clone()).collect::<Vec<_>>(),
        }
    });
    if opts.with_baseline {
        r["baselineState"] = json!(if v.baselined { "unchanged" } else { "new" });
    }
    if let Some(reason) = suppression {
        r["suppressions"] = json!([{
            "kind": "external",
            "state": "accepted",
            "justification": reason,
            "location": { "physicalLocation": { "artifactLocation": { "uri": "lockcheck.toml" } } }
        }]);
    }
    r
}

/// The SARIF log of a report.
pub fn to_sarif(report: &Report, opts: &SarifOptions) -> Value {
    let rules: Vec<Value> = rules::findings()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.name,
                "shortDescription": { "text": r.short },
                "fullDescription": { "text": r.what },
                "help": {
                    "text": format!("{}\n\nHow to fix it: {}", r.what, r.fix),
                    "markdown": format!("{}\n\n**How to fix it.** {}\n\n`lockcheck explain {}` prints this text.", r.what, r.fix, r.id)
                },
                "defaultConfiguration": { "level": "error" },
                "properties": { "tags": ["concurrency", "deadlock", "lockcheck"], "precision": "high", "problem.severity": "error" }
            })
        })
        .collect();
    let mut results: Vec<Value> = report
        .violations
        .iter()
        .map(|v| result(v, None, opts))
        .collect();
    results.extend(
        report
            .suppressed
            .iter()
            .map(|s| result(&s.violation, Some(&s.reason), opts)),
    );
    let notifications: Vec<Value> = report
        .warnings
        .iter()
        .map(|w| json!({ "level": "warning", "message": { "text": w } }))
        .collect();
    let mut run = json!({
        "tool": {
            "driver": {
                "name": "lockcheck",
                "fullName": "lockcheck analyze",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules
            }
        },
        "invocations": [{
            "executionSuccessful": true,
            "toolExecutionNotifications": notifications
        }],
        "columnKind": "unicodeCodePoints",
        "results": results
    });
    // What the summary says of completeness, where something is not (as the text report's
    // summary line): a search bound (a violation may be missing), or only a listing bound.
    if !report.summary.complete || !report.summary.filtered_complete {
        run["invocations"][0]["properties"] = json!({
            "complete": report.summary.complete,
            "filteredComplete": report.summary.filtered_complete,
        });
    }
    if let Some(root) = &opts.repo_root {
        let root = root.to_string_lossy().replace('\\', "/");
        let root = root.trim_end_matches('/');
        if root.starts_with('/') {
            run["originalUriBaseIds"] =
                json!({ "%SRCROOT%": { "uri": format!("file://{}/", encode(root)) } });
        }
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [run]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_become_locations() {
        assert_eq!(
            site_location("examples/bank.rs:28:41", None),
            SiteLocation::Physical {
                uri: "examples/bank.rs".into(),
                relative: true,
                line: 28,
                column: Some(41)
            }
        );
        assert_eq!(
            site_location("/repo/src/a b.rs:3:1", Some(Path::new("/repo/"))),
            SiteLocation::Physical {
                uri: "src/a%20b.rs".into(),
                relative: true,
                line: 3,
                column: Some(1)
            }
        );
        assert_eq!(
            site_location("/home/u/.cargo/registry/x.rs:3:1", Some(Path::new("/repo"))),
            SiteLocation::Physical {
                uri: "file:///home/u/.cargo/registry/x.rs".into(),
                relative: false,
                line: 3,
                column: Some(1)
            }
        );
        assert_eq!(
            site_location("/repository/a.rs:3:1", Some(Path::new("/repo"))),
            SiteLocation::Physical {
                uri: "file:///repository/a.rs".into(),
                relative: false,
                line: 3,
                column: Some(1)
            }
        );
        assert_eq!(
            site_location("loc 42", None),
            SiteLocation::Logical("loc 42".into())
        );
        assert_eq!(
            site_location("src/a.rs:7", None),
            SiteLocation::Physical {
                uri: "src/a.rs".into(),
                relative: true,
                line: 7,
                column: None
            }
        );
    }
}
