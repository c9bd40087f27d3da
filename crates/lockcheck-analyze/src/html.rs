//! `--format html`: one self-contained page (no network, no external assets, no script) with
//! the lock-order graph as inline SVG, the findings with their scenarios, the suppressed
//! findings, the suggested hierarchy and the timeout table.
//!
//! A Content-Security-Policy of `default-src 'none'` (inline styles only) makes a browser refuse
//! anything the page might try to load, so "self-contained" is enforced, not just intended.

use crate::graph::{OrderGraph, MAX_PICTURE_NODES};
use crate::report::{render_violation, summary_line, title, Report};
use crate::timeouts::fmt_ns;
use std::fmt::Write as _;

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #1d1d1f; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
.summary { font-family: ui-monospace, monospace; background: #f5f5f7; padding: 0.6em 0.8em; border-radius: 4px; }
.fail { color: #b00020; }
.pass { color: #0a7d32; }
pre { background: #f8f8f8; border: 1px solid #e2e2e2; padding: 0.8em; overflow-x: auto; font-size: 0.85em; line-height: 1.35; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.violation { border-left: 4px solid #b00020; padding-left: 0.8em; margin: 1em 0; }
.violation.baselined { border-left-color: #999; }
.tag { display: inline-block; font-size: 0.75em; padding: 0.05em 0.5em; border-radius: 3px; background: #eee; margin-left: 0.4em; }
.tag.rule { background: #fde7ea; color: #b00020; }
.graph { overflow: auto; border: 1px solid #e2e2e2; padding: 0.5em; background: #fff; }
.note { color: #555; font-size: 0.9em; }
.warning { color: #8a5a00; }
"#;

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Renders the page. `graph` is the analysis' lock-order graph (cut to
/// [`MAX_PICTURE_NODES`] for the picture).
pub fn render_html(report: &Report, graph: &OrderGraph) -> String {
    let mut h = String::new();
    let failing = report.has_violations();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>lockcheck report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&short_summary(report))
    );
    let _ = writeln!(h, "<h1>lockcheck report</h1>");
    let _ = writeln!(
        h,
        "<p class=\"summary {}\" id=\"summary\">{}</p>",
        if failing { "fail" } else { "pass" },
        escape(&summary_line(report))
    );
    if !report.warnings.is_empty() {
        let _ = writeln!(h, "<ul class=\"warning\" id=\"warnings\">");
        for w in &report.warnings {
            let _ = writeln!(h, "<li>{}</li>", escape(w));
        }
        let _ = writeln!(h, "</ul>");
    }

    // The graph.
    let _ = writeln!(h, "<h2 id=\"graph\">Lock-order graph</h2>");
    let picture = graph.picture(MAX_PICTURE_NODES);
    if picture.nodes.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">No lock was acquired while holding another: the graph is empty.</p>"
        );
    } else {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} level: an arrow A &rarr; B means some thread acquired B while holding A, labelled with where. <span class=\"fail\">Red</span>: the edges of violations.{}</p>",
            escape(&picture.level),
            if picture.omitted > 0 || picture.omitted_edges > 0 {
                format!(
                    " {} of {} locks and {} of {} of their edges are drawn (the violations' first); <code>--format dot</code> has them all.",
                    picture.nodes.len(),
                    picture.nodes.len() + picture.omitted,
                    picture.edges.len(),
                    picture.edges.len() + picture.omitted_edges
                )
            } else {
                String::new()
            }
        );
        match picture.to_svg() {
            Ok(svg) => {
                let _ = writeln!(h, "<div class=\"graph\">{svg}</div>");
            }
            Err(e) => {
                let _ = writeln!(h, "<p class=\"warning\">{}</p>", escape(&e));
            }
        }
    }

    // Findings.
    let new: Vec<_> = report.new_violations().collect();
    let _ = writeln!(h, "<h2 id=\"violations\">Violations ({})</h2>", new.len());
    if new.is_empty() {
        let _ = writeln!(h, "<p class=\"pass\">No violation.</p>");
    }
    for (i, v) in new.iter().enumerate() {
        let _ = writeln!(
            h,
            "<section class=\"violation\" id=\"v-{id}\">\n<h3>{n}. {t}<span class=\"tag rule\">{rule}</span><span class=\"tag\">{id}</span></h3>\n<pre>{text}</pre>\n</section>",
            id = escape(&v.id),
            n = i + 1,
            t = escape(&title(v)),
            rule = escape(&v.rule),
            text = escape(&render_violation(v, i, new.len(), false))
        );
    }
    let baselined: Vec<_> = report.violations.iter().filter(|v| v.baselined).collect();
    if !baselined.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"baseline\">In the baseline ({}): reported, not failing</h2>\n<ul>",
            baselined.len()
        );
        for v in baselined {
            let _ = writeln!(
                h,
                "<li><code>{}</code> {}</li>",
                escape(&v.id),
                escape(&title(v))
            );
        }
        let _ = writeln!(h, "</ul>");
    }
    if !report.suppressed.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"suppressed\">Suppressed by lockcheck.toml ({})</h2>\n<table>\n<tr><th>id</th><th>finding</th><th>reason</th></tr>",
            report.suppressed.len()
        );
        for s in &report.suppressed {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(&s.violation.id),
                escape(&title(&s.violation)),
                escape(&s.reason)
            );
        }
        let _ = writeln!(h, "</table>");
    }
    if !report.summary.filtered_by.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">Candidate cycles removed as infeasible: {}. (<code>lockcheck explain &lt;filter&gt;</code> says why each cannot deadlock.)</p>",
            report
                .summary
                .filtered_by
                .iter()
                .map(|f| format!("{} {}", escape(&f.filter), f.count))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // Hierarchy.
    let hier = &report.hierarchy;
    if !hier.levels.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"hierarchy\">Suggested lock hierarchy</h2>\n<p class=\"note\">Acquire locks in increasing level.</p>\n<table>\n<tr><th>level</th><th>class</th><th>kind</th></tr>"
        );
        for l in &hier.levels {
            let _ = writeln!(
                h,
                "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
                l.level,
                escape(&l.class),
                escape(&l.kind)
            );
        }
        let _ = writeln!(h, "</table>");
        if !hier.removed_edges.is_empty() {
            let _ = writeln!(
                h,
                "<p>To make this order hold, change these acquisitions:</p>\n<table>\n<tr><th>acquired</th><th>while holding</th><th>dependencies</th><th>sites</th></tr>"
            );
            for e in &hier.removed_edges {
                let _ = writeln!(
                    h,
                    "<tr{}><td><code>{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td></tr>",
                    if e.in_violation { " class=\"fail\"" } else { "" },
                    escape(&e.to),
                    escape(&e.from),
                    e.dependencies,
                    escape(&e.sites.join(", "))
                );
            }
            let _ = writeln!(h, "</table>");
        }
    }

    // Timeouts.
    if !report.timeouts.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"timeouts\">Timeouts (per class)</h2>\n<table>\n<tr><th>class</th><th>acquired</th><th>wait p50</th><th>p99</th><th>max</th><th>hold p50</th><th>p99</th><th>max</th><th>suggested timeout</th><th>reasoning and flags</th></tr>"
        );
        for t in &report.timeouts {
            let flags: String = t
                .flags
                .iter()
                .map(|f| {
                    format!(
                        "<br><span class=\"warning\">[{}] {}</span>",
                        escape(&f.kind),
                        escape(&f.message)
                    )
                })
                .collect();
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}{}</td></tr>",
                escape(&t.class),
                t.wait.count,
                fmt_ns(t.wait.p50_ns),
                fmt_ns(t.wait.p99_ns),
                fmt_ns(t.wait.max_ns),
                fmt_ns(t.hold.p50_ns),
                fmt_ns(t.hold.p99_ns),
                fmt_ns(t.hold.max_ns),
                fmt_ns(t.suggested_timeout_ns),
                escape(&t.reasoning),
                flags
            );
        }
        let _ = writeln!(h, "</table>");
    }
    let _ = writeln!(
        h,
        "<p class=\"note\">Generated by lockcheck analyze {}.</p>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    h
}

fn short_summary(r: &Report) -> String {
    let n = r.new_violations().count();
    match n {
        0 => "no violation".into(),
        1 => "1 violation".into(),
        n => format!("{n} violations"),
    }
}

/// Options of [`render_html_with`].
#[derive(Debug, Clone, Default)]
pub struct HtmlOptions {
    /// Source paths under this directory are shown relative to it.
    pub repo_root: Option<std::path::PathBuf>,
}

/// [`render_html`] with options.
pub fn render_html_with(report: &Report, graph: &OrderGraph, _opts: &HtmlOptions) -> String {
    render_html(report, graph)
}
