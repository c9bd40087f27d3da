//! `lockcheck analyze --format html`: one self-contained page, checked as text and, when
//! `/usr/bin/chromium` exists (Debian: `apt-get install -y chromium`), in headless Chromium: it
//! renders (DOM and screenshot), shows the cycle (red edges in the SVG, the violation's
//! scenario), and logs no console error (a page with a deliberate `console.error` proves that
//! errors would be seen). Without Chromium the browser checks are skipped with a notice.

mod common;

use common::{corpus, fixture, lockcheck};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

fn tmpdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lockcheck-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
fn chromium(page: &Path, args: &[&str], profile: &Path) -> (String, String) {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
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

#[test]
fn the_page_is_self_contained_and_holds_every_section() {
    let dir = tmpdir("html-text");
    let page = dir.join("report.html");
    let html = html_of(&[fixture("ab-ba.json")], &page);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Content-Security-Policy"));
    // No network, no external assets, no script.
    for needle in ["http://", "https://", "<script", "<link", "src=", "@import"] {
        let allowed = "xmlns=\"http://www.w3.org/2000/svg\"";
        let without = html.replace(allowed, "");
        assert!(!without.contains(needle), "the page contains {needle:?}");
    }
    assert!(html.contains("<svg"), "the graph is inline SVG");
    assert!(html.contains("stroke=\"#ff0000ff\""), "the cycle is red");
    assert!(html.contains("Possible unsafe locking scenario"));
    assert!(html.contains("lockcheck/lock-order-inversion"));
    assert!(html.contains("id=\"hierarchy\""));
    assert!(html.contains("id=\"timeouts\""));
    assert!(
        html.contains("src/audit.rs:41"),
        "an edge label names its site"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_large_graph_is_cut_to_the_violations_neighborhood() {
    let dir = tmpdir("html-large");
    let page = dir.join("report.html");
    let html = html_of(&[corpus("rapidbin", "cache4j_dlf.data")], &page);
    assert!(
        html.contains("--format dot</code> has them all"),
        "says what is cut"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn headless_chromium_renders_the_cycle_without_console_errors() {
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
    html_of(&[fixture("ab-ba.json")], &page);

    // The DOM after rendering: the SVG with the two red edges of the cycle and both locks.
    let (dom, stderr) = chromium(&page, &["--dump-dom"], &profile);
    assert!(dom.contains("<svg"), "no SVG in the DOM: {dom}\n{stderr}");
    let red_paths = dom
        .split("<path")
        .skip(1)
        .filter(|tag| {
            tag.split('>')
                .next()
                .unwrap_or("")
                .contains("stroke=\"#ff0000ff\"")
        })
        .count();
    assert_eq!(red_paths, 2, "two red edges (the AB-BA cycle): {dom}");
    assert!(dom.contains("accounts"), "{dom}");
    assert!(dom.contains("src/ledger.rs:14:20"), "{dom}");
    assert!(dom.contains("*** DEADLOCK ***"), "{dom}");

    // A screenshot: the page paints (a blank page is a few hundred bytes of PNG).
    let shot = dir.join("report.png");
    let (_, stderr) = chromium(
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
        ],
        &profile,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {stderr}"));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "the screenshot looks blank: {} bytes",
        png.len()
    );

    // Console errors: the detector works (a page with an error shows one) ...
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
    // ... and the report has none.
    let (_, stderr) = chromium(
        &page,
        &["--enable-logging=stderr", "--v=0", "--dump-dom"],
        &profile,
    );
    let console = console_lines(&stderr);
    assert!(console.is_empty(), "console messages: {console:#?}");
    std::fs::remove_dir_all(&dir).ok();
}
