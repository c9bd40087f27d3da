//! `lockcheck analyze --format html`: one self-contained, deterministic page, checked as text and,
//! when `/usr/bin/chromium` exists (Debian: `apt-get install -y chromium`), in headless Chromium
//! at 1280x800: every lock node lies inside the visible page after load; clicking a violation
//! highlights exactly its cycle's nodes and scrolls to its scenario; the page loads nothing (no
//! resource entry, no request refused by its Content-Security-Policy; a control page without
//! the policy that loads an image from a local listener proves both probes see a load); no
//! console error (a page with a deliberate `console.error` proves errors would be seen); it
//! paints (screenshot). The checks run in a probe script appended to a copy of the page, whose
//! results `--dump-dom` prints. Without Chromium the browser checks are skipped with a notice.

mod common;

#[path = "support/scratch.rs"]
mod scratch;

use common::{corpus, fixture, lockcheck};
use scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

fn tmpdir(name: &str) -> Scratch {
    Scratch::new(name)
}

fn html_of(files: &[PathBuf], out: &Path) -> String {
    let mut args: Vec<std::ffi::OsString> = vec![
        "analyze".into(),
        "--format".into(),
        "html".into(),
        "-o".into(),
        out.into(),
    ];
    args.extend(files.iter().map(|f| f.clone().into_os_string()));
    let run = lockcheck(args);
    assert!(matches!(run.code, Some(0 | 1)), "{}", run.stderr);
    std::fs::read_to_string(out).unwrap()
}

/// Runs Chromium headless on `page` with `args`, killed after 90 s; returns (stdout, stderr).
/// A fresh profile per run; fixed flags and window size, so runs are repeatable.
fn chromium(page: &Path, args: &[&str], profile: &Path) -> (String, String) {
    std::fs::remove_dir_all(profile).ok();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            child.kill().ok();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Console messages Chromium logged (`--enable-logging=stderr --v=0`).
fn console_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Refused to"))
        .map(str::to_string)
        .collect()
}

/// The page's text without the one URL it may contain (the SVG namespace, an identifier).
fn without_namespace(html: &str) -> String {
    html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
}

#[test]
fn the_page_is_self_contained_and_holds_every_section() {
    let dir = tmpdir("html-text");
    let page = dir.join("report.html");
    let html = html_of(&[fixture("ab-ba.json")], &page);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none';"));
    // No network, no external file: no URL, no loading attribute, inline script only.
    let text = without_namespace(&html);
    for needle in [
        "http://", "https://", "<link", " src=", "@import", "url(http", "url(/", "//cdn",
    ] {
        assert!(!text.contains(needle), "the page contains {needle:?}");
    }
    for (i, _) in text.match_indices("url(") {
        assert!(
            text[i..].starts_with("url(#"),
            "a url() that is not a fragment"
        );
    }
    for (i, _) in text.match_indices("href=\"") {
        assert!(
            text[i + 6..].starts_with('#'),
            "a link that leaves the page"
        );
    }
    assert_eq!(text.matches("<script").count(), 1);
    assert!(text.contains("<script>"), "the script is inline");
    // The graph: inline SVG, every lock a node, the edge to change red and pointing up.
    assert!(
        html.contains("class=\"zoom lockgraph\""),
        "the graph is inline SVG"
    );
    assert_eq!(html.matches("class=\"node").count(), 2, "{html}");
    assert!(
        html.contains("class=\"edge viol change\""),
        "the edge to change is red"
    );
    assert!(
        html.contains("level 0") && html.contains("level 1"),
        "drawn in levels"
    );
    assert!(
        html.contains("<title>") && html.contains("src/audit.rs:41"),
        "details on hover"
    );
    // The scenario: a timeline of the threads, then the text.
    assert!(html.contains("aria-label=\"scenario timeline\""));
    assert!(
        html.contains(">transfer-1<") && html.contains(">audit<"),
        "one lane per thread"
    );
    assert!(html.contains(">DEADLOCK<"));
    assert!(html.contains("Possible unsafe locking scenario"));
    assert!(html.contains("lockcheck/lock-order-inversion"));
    assert!(html.contains("id=\"hierarchy\""));
    assert!(html.contains("id=\"timeouts\""));
    // Short labels: `file:line`, without the column; the full name in the tooltip.
    assert!(html.contains(">src/ledger.rs:14</text>"), "{html}");
    assert!(html.contains("data-name=\"src/ledger.rs:14:20\""));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_page_is_deterministic() {
    let dir = tmpdir("html-determinism");
    for (i, inputs) in [
        vec![fixture("ab-ba.json"), fixture("three-way-deadlock.json")],
        vec![corpus("rapidbin", "cache4j_dlf.data")],
    ]
    .iter()
    .enumerate()
    {
        let a = html_of(inputs, &dir.join(format!("a{i}.html")));
        for run in 0..3 {
            let b = html_of(inputs, &dir.join(format!("b{i}-{run}.html")));
            assert!(a == b, "two renderings of {inputs:?} differ");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_large_graph_is_drawn_whole_with_the_violations_first_and_says_what_is_folded() {
    let dir = tmpdir("html-large");
    let page = dir.join("report.html");
    let inputs = [
        fixture("ab-ba.json"),
        corpus("rapidbin", "cache4j_dlf.data"),
    ];
    let html = html_of(&inputs, &page);
    // Every lock of the graph is drawn: as many nodes as `--format dot` has.
    let mut args: Vec<std::ffi::OsString> = vec!["analyze".into(), "--format".into(), "dot".into()];
    args.extend(inputs.iter().map(|f| f.clone().into_os_string()));
    let dot = lockcheck(args).stdout;
    let dot_nodes = dot
        .lines()
        .filter(|l| l.trim_start().starts_with('n') && l.contains("[label=") && !l.contains("->"))
        .count();
    assert!(dot_nodes > 1000, "{dot_nodes}");
    assert_eq!(html.matches("class=\"node").count(), dot_nodes);
    assert!(!html.contains("leaves out"), "nothing is cut");
    // The violation's component on top; the rest folded, and said so.
    let main = &html[html.find("id=\"g-svg\"").unwrap()..html.find("id=\"folded\"").unwrap()];
    assert_eq!(main.matches("class=\"node").count(), 2);
    assert!(
        html.contains(&format!(
            "2 of {dot_nodes} locks are drawn above: the parts of the graph with a violation"
        )),
        "the folding is said"
    );
    assert!(html.contains("<details id=\"folded\"><summary>Show the other"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs in the page after its own script (appended before `</body>`), once the page and anything
/// it loads are loaded: measures every lock node, zooms, pans and resets the graph,
/// clicks violation `click` (0-based), and writes what it saw as JSON into `<pre id="probe">`.
const PROBE: &str = r#"<script>
window.addEventListener('load', function () {
  var out = { vw: window.innerWidth, vh: window.innerHeight, outside: [], nodes: 0 };
  var nodes = document.querySelectorAll('#g-svg .node');
  out.nodes = nodes.length;
  Array.prototype.forEach.call(nodes, function (n) {
    var r = n.getBoundingClientRect();
    if (!(r.width > 0 && r.left >= 0 && r.top >= 0 && r.right <= out.vw && r.bottom <= out.vh)) {
      out.outside.push(n.getAttribute('data-name') + ' at ' + [r.left, r.top, r.right, r.bottom].join(','));
    }
  });
  // Zoom (wheel), pan (drag), reset (double-click) change the graph's viewBox.
  var svg = document.getElementById('g-svg');
  if (svg) {
  var vb = svg.viewBox.baseVal;
  var home = [vb.x, vb.y, vb.width, vb.height].join(',');
  var box = svg.getBoundingClientRect();
  var at = { clientX: box.left + box.width / 2, clientY: box.top + box.height / 2, bubbles: true, cancelable: true };
  svg.dispatchEvent(new WheelEvent('wheel', Object.assign({ deltaY: -100 }, at)));
  out.zoomed = vb.width < parseFloat(home.split(',')[2]);
  var x0 = vb.x;
  svg.dispatchEvent(new PointerEvent('pointerdown', Object.assign({ button: 0, pointerId: 1 }, at)));
  svg.dispatchEvent(new PointerEvent('pointermove', Object.assign({ pointerId: 1 }, at, { clientX: at.clientX - 40 })));
  svg.dispatchEvent(new PointerEvent('pointerup', Object.assign({ pointerId: 1 }, at)));
  out.panned = vb.x > x0;
  svg.dispatchEvent(new MouseEvent('dblclick', at));
  out.reset = [vb.x, vb.y, vb.width, vb.height].join(',') === home;
  }
  var links = document.querySelectorAll('.vlink');
  out.links = links.length;
  var link = links[CLICK];
  if (link) {
    link.click();
    out.highlighted = Array.prototype.map.call(document.querySelectorAll('#g-svg .node.hl'),
      function (n) { return n.getAttribute('data-name'); }).sort();
    out.hash = location.hash;
    var target = document.getElementById(link.getAttribute('href').slice(1));
    out.scenarioTop = target ? target.getBoundingClientRect().top : null;
    out.scrollY = window.scrollY;
  }
  out.resources = performance.getEntriesByType('resource').map(function (e) { return e.name; });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"#;

/// The probe's JSON from a `--dump-dom` output.
fn probe_result(dom: &str) -> serde_json::Value {
    let start = dom
        .find("<pre id=\"probe\">")
        .unwrap_or_else(|| panic!("no probe output in the DOM:\n{dom}"))
        + "<pre id=\"probe\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("probe JSON ({e}): {text}"))
}

/// A copy of `page` with the probe, clicking violation `click`.
fn probed(page: &Path, click: usize, out: &Path) {
    let html = std::fs::read_to_string(page).unwrap();
    let probe = PROBE.replace("CLICK", &click.to_string());
    std::fs::write(out, html.replace("</body>", &format!("{probe}</body>"))).unwrap();
}

/// What a click on a violation must highlight: the graph nodes of its cycle. The graph is at
/// class level, so they are the cycle's classes, except for an inversion between locks of one
/// class, whose locks are drawn on their own.
fn expected_cycle(v: &serde_json::Value) -> Vec<String> {
    let locks = v["locks"].as_array().unwrap();
    let classes: Vec<String> = locks
        .iter()
        .map(|l| l["class"].as_str().unwrap().to_string())
        .collect();
    let same_class = classes.iter().all(|c| *c == classes[0]);
    let mut out: Vec<String> = if same_class && v["level"] == "instance" {
        locks
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    } else {
        classes
    };
    out.sort();
    out.dedup();
    out
}

#[test]
fn headless_chromium_shows_every_node_highlights_exactly_the_cycle_and_loads_nothing() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "NOTICE: {CHROMIUM} not found: the browser checks of the HTML report are skipped \
             (Debian: apt-get install -y chromium)"
        );
        return;
    }
    let dir = tmpdir("html-chromium");
    let profile = dir.join("profile");
    let page = dir.join("report.html");
    // Two violations over disjoint locks: a click must highlight one cycle, not both.
    let inputs = [fixture("ab-ba.json"), fixture("three-way-deadlock.json")];
    html_of(&inputs, &page);
    let report = common::analyze_json(&inputs, &[]).json();
    let violations = report["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 2);

    for (k, v) in violations.iter().enumerate() {
        let probe_page = dir.join(format!("probe-{k}.html"));
        probed(&page, k, &probe_page);
        let (dom, stderr) = chromium(
            &probe_page,
            &["--enable-logging=stderr", "--v=0", "--dump-dom"],
            &profile,
        );
        let r = probe_result(&dom);
        // A 1280x800 window: the page's viewport is 1280 wide and, under the window's frame,
        // somewhat shorter than 800 (657 in Chromium 156), which only makes the check stricter.
        assert_eq!(r["vw"].as_u64(), Some(1280), "{r}");
        assert!((600..=800).contains(&r["vh"].as_u64().unwrap()), "{r}");
        assert_eq!(r["nodes"], 5, "every lock is a node: {r}");
        assert_eq!(
            r["outside"],
            serde_json::json!([]),
            "nodes outside the page: {r}"
        );
        assert_eq!(r["links"], 2, "{r}");
        assert_eq!(
            (&r["zoomed"], &r["panned"], &r["reset"]),
            (
                &serde_json::json!(true),
                &serde_json::json!(true),
                &serde_json::json!(true)
            ),
            "wheel zoom, drag pan, double-click reset: {r}"
        );
        let want = expected_cycle(v);
        assert_eq!(
            r["highlighted"],
            serde_json::json!(want),
            "violation {k}: {r}"
        );
        // ... and the scenario is scrolled into view.
        let id = v["id"].as_str().unwrap();
        assert_eq!(r["hash"], format!("#v-{id}"), "{r}");
        let top = r["scenarioTop"].as_f64().unwrap();
        let vh = r["vh"].as_f64().unwrap();
        assert!(
            (-2.0..vh - 100.0).contains(&top),
            "the scenario is not in view: {r}"
        );
        assert!(r["scrollY"].as_f64().unwrap() > 0.0, "{r}");
        // No load: no resource entry, nothing refused by the policy, no console message.
        assert_eq!(r["resources"], serde_json::json!([]), "{r}");
        let console = console_lines(&stderr);
        assert!(console.is_empty(), "console messages: {console:#?}");
    }

    // The probes see a load: a control page without the policy loads an image from a local
    // listener, which both the listener and the resource entries see.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        // Bounded: a control page that never asks leaves an empty request, and the test fails.
        listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let mut conn = loop {
            match listener.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if start.elapsed() < Duration::from_secs(60) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return String::new(),
            }
        };
        conn.set_nonblocking(false).ok();
        conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut buf = [0u8; 2048];
        let n = conn.read(&mut buf).unwrap_or(0);
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        request
    });
    let control = dir.join("control.html");
    std::fs::write(
        &control,
        format!(
            "<!DOCTYPE html><html><body><img src=\"http://127.0.0.1:{port}/canary.png\" alt=\"\">\
             <p>control</p></body></html>"
        ),
    )
    .unwrap();
    let control_probe = dir.join("control-probe.html");
    probed(&control, 0, &control_probe);
    let (dom, _) = chromium(&control_probe, &["--dump-dom"], &profile);
    let request = server
        .join()
        .expect("the listener saw the control page's request");
    assert!(request.contains("GET /canary.png"), "{request}");
    let r = probe_result(&dom);
    assert!(
        r["resources"].to_string().contains("/canary.png"),
        "the resource probe missed the control page's load: {r}"
    );

    // A screenshot: the page paints (a blank page is a few hundred bytes of PNG).
    let shot = dir.join("report.png");
    let (_, stderr) = chromium(
        &page,
        &[&format!("--screenshot={}", shot.display())],
        &profile,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {stderr}"));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "the screenshot looks blank: {} bytes",
        png.len()
    );

    // Console errors: the detector works (a page with an error shows one).
    let bad = dir.join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><script>console.error('lockcheck-probe')</script></body></html>",
    )
    .unwrap();
    let (_, stderr) = chromium(
        &bad,
        &["--enable-logging=stderr", "--v=0", "--dump-dom"],
        &profile,
    );
    assert!(
        console_lines(&stderr)
            .iter()
            .any(|l| l.contains("lockcheck-probe")),
        "the probe's console error was not seen; stderr:\n{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_inversion_within_one_class_draws_its_two_locks_with_red_arrows_both_ways() {
    // Two accounts of one class, locked in opposite orders by two threads: at class level a
    // self-loop, so the page also draws the two locks, in the class's level.
    let dir = tmpdir("html-same-class");
    let trace = dir.join("same-class.json");
    std::fs::write(
        &trace,
        r#"{"e":"header","version":1,"pid":7,"program":"bank"}
{"e":"class","c":1,"key":"account","kind":"mutex"}
{"e":"lock","l":1,"c":1}
{"e":"lock","l":2,"c":1}
{"e":"thread","t":1,"name":"alice"}
{"e":"thread","t":2,"name":"bob"}
{"e":"site","s":1,"loc":"src/bank.rs:27:43"}
{"e":"site","s":2,"loc":"src/bank.rs:28:41"}
{"e":"acquire","t":1,"l":1,"m":"w","s":1}
{"e":"acquire","t":1,"l":2,"m":"w","s":2}
{"e":"release","t":1,"l":2}
{"e":"release","t":1,"l":1}
{"e":"acquire","t":2,"l":2,"m":"w","s":1}
{"e":"acquire","t":2,"l":1,"m":"w","s":2}
{"e":"release","t":2,"l":1}
{"e":"release","t":2,"l":2}
"#,
    )
    .unwrap();
    let report = common::analyze_json(std::slice::from_ref(&trace), &[]).json();
    let v = &report["violations"][0];
    assert_eq!(v["level"], "instance", "{report:#}");
    let names: Vec<String> = v["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    let html = html_of(&[trace], &dir.join("report.html"));
    // The class, and each lock of the cycle, as nodes.
    assert!(html.contains("data-name=\"account\""));
    for n in &names {
        assert!(html.contains(&format!("data-name=\"{n}\"")), "{n}: {html}");
    }
    assert_eq!(html.matches("class=\"node").count(), 3);
    // Two red arrows between them, one each way, and the button highlights those two locks.
    assert_eq!(
        html.matches("class=\"edge viol change\"").count(),
        2,
        "{html}"
    );
    let button = &html[html.find("class=\"vlink\"").unwrap()..];
    let nodes = &button[button.find("data-nodes=\"").unwrap() + 12..];
    let nodes = &nodes[..nodes.find('"').unwrap()];
    assert_eq!(nodes.split(' ').count(), 2, "{nodes}");
    assert!(
        !nodes.contains("g-n0"),
        "the class node is not part of the cycle: {nodes}"
    );
    assert!(html.contains(">alice<") && html.contains(">bob<"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A dense graph: one thread nests 220 locks (24,090 edges, one per pair, across 220 levels),
/// two others take `x` and `y` in both orders. The page draws `MAX_DRAWN_EDGES` (20,000) of
/// them, the violation's among them, says how many it leaves out, and routes at most
/// `MAX_BENDS` bend points, saying how many edges it drew straight. Before these bounds the
/// page of a hostile 20,000-event trace took 16 GB and minutes.
#[test]
fn a_dense_graph_is_drawn_within_its_bounds_and_says_what_it_leaves_out() {
    let dir = tmpdir("html-dense");
    let trace = dir.path().join("dense.std");
    let mut t = String::new();
    for i in 0..220 {
        t.push_str(&format!("T0|acq(l{i})|{i}\n"));
    }
    for i in (0..220).rev() {
        t.push_str(&format!("T0|rel(l{i})|{i}\n"));
    }
    t.push_str("T1|acq(x)|1000\nT1|acq(y)|1001\nT1|rel(y)|1002\nT1|rel(x)|1003\n");
    t.push_str("T2|acq(y)|2000\nT2|acq(x)|2001\nT2|rel(x)|2002\nT2|rel(y)|2003\n");
    std::fs::write(&trace, t).unwrap();
    let page = html_of(&[trace], &dir.path().join("dense.html"));
    let drawn = page.matches("<g class=\"edge").count();
    assert_eq!(drawn, 20_000);
    assert!(
        page.contains("This graph leaves out 0 locks and 4092 edges"),
        "{}",
        &page[..2000.min(page.len())]
    );
    // The violation's two edges are drawn, red.
    assert_eq!(page.matches("<g class=\"edge viol").count(), 2);
    // Spans of up to 219 levels: far more bend points than the budget, so some are straight.
    // (In the folded part: the violation's component is drawn first, above it.)
    let note = page
        .split("id=\"f-straight\">")
        .nth(1)
        .expect("the straight-edges warning");
    assert!(note.contains("drawn straight"), "{note}");
    assert!(note.contains("routes at most 200000"), "{note}");
}
