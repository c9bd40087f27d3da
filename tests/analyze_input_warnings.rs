//! What `lockcheck analyze` says about its inputs rather than their events: a trace file named
//! twice (by one name, or two names of one device and inode) is read once and warned about; a
//! lock with an empty name is shown as `""` in every output format, not as a blank; a FIFO with
//! nothing coming from it is said to be waited for on stderr, never a silent hang. (The fork
//! cycle warning is a `model` unit test: `nonsense_forks_and_joins_are_warned`.)

#![cfg(unix)]

#[path = "support/scratch.rs"]
mod scratch;

use scratch::Scratch;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_lockcheck");

fn analyze(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("analyze")
        .args(args)
        .output()
        .expect("run lockcheck")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report: {e}; stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn abba() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/json/abba.jsonl"))
        .expect("the fixture")
}

#[test]
fn a_trace_file_named_twice_is_read_once_and_warned_about() {
    let dir = Scratch::new("twice");
    let p = dir.file("abba.jsonl", &abba());
    let once = json(&analyze(&["--format", "json", p.to_str().unwrap()]));
    let link = dir.path().join("again.jsonl");
    std::fs::hard_link(&p, &link).expect("a hard link");
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::os::unix::fs::symlink(&p, sub.join("link.jsonl")).expect("a symbolic link");
    let (p, link, sub) = (
        p.to_str().unwrap(),
        link.to_str().unwrap(),
        sub.to_str().unwrap(),
    );
    for (args, again) in [
        (vec![p, p], "given more than once"),
        (vec![p, link], "the same device and inode"),
        (vec![sub, p], "the same device and inode"),
    ] {
        let mut all = vec!["--format", "json"];
        all.extend(&args);
        let r = json(&analyze(&all));
        assert_eq!(r["summary"]["traces"], 1, "{args:?}: {}", r["summary"]);
        assert_eq!(
            r["summary"]["violations"], once["summary"]["violations"],
            "{args:?}"
        );
        assert_eq!(
            r["summary"]["events"], once["summary"]["events"],
            "{args:?}"
        );
        let warnings = r["warnings"].to_string();
        assert!(warnings.contains(again), "{args:?}: {warnings}");
    }
    assert!(
        !once["warnings"].to_string().contains("read once"),
        "{}",
        once["warnings"]
    );
}

#[test]
fn an_empty_lock_name_is_shown_in_every_format() {
    let dir = Scratch::new("empty-name");
    // The fixture with `accounts` and thread `main` unnamed, and no fork (the threads unordered:
    // an inversion).
    let trace: String = String::from_utf8(abba())
        .unwrap()
        .replace("\"key\":\"accounts\"", "\"key\":\"\"")
        .replace("\"name\":\"main\"", "\"name\":\"\"")
        .lines()
        .filter(|l| !l.contains("\"e\":\"fork\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = dir.file("abba.jsonl", trace.as_bytes());
    let p = p.to_str().unwrap();
    let text = String::from_utf8(analyze(&[p]).stdout).unwrap();
    assert!(
        text.contains("inversion between \"\", src/ledger.rs:14:20"),
        "{text}"
    );
    assert!(text.contains("by \"\", at src/bank.rs:41:22"), "{text}");
    let r = json(&analyze(&["--format", "json", p]));
    assert!(r.to_string().contains(r#""\"\"""#), "{r}");
    // DOT and SARIF escape the quotes, HTML writes them as entities.
    for (format, shown) in [
        ("dot", r#"label="\"\"\n(mutex)""#),
        ("html", "between &quot;&quot;, src/ledger.rs"),
        ("sarif", r#"between `\"\"`, `src/ledger.rs:14:20`"#),
    ] {
        let out = String::from_utf8(analyze(&["--format", format, p]).stdout).unwrap();
        assert!(out.contains(shown), "{format}: {out}");
    }
}

#[test]
fn a_fifo_with_nothing_coming_is_said_to_be_waited_for() {
    let dir = Scratch::new("fifo");
    let fifo = dir.path().join("trace.jsonl");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let mut child = Command::new(BIN)
        .args(["analyze", "--format", "json"])
        .arg(&fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lockcheck");
    // Once the notice is out (past its delay, 2 s), the writer comes: the analysis goes on. (A
    // 3 s sleep did not make sure the notice came first on a loaded machine.)
    let stderr = child.stderr.take().unwrap();
    let (said_tx, said) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        let mut said_tx = Some(said_tx);
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("a FIFO (named pipe)") {
                if let Some(tx) = said_tx.take() {
                    let _ = tx.send(());
                }
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let _ = said.recv_timeout(Duration::from_secs(60));
    std::fs::write(&fifo, abba()).expect("write into the FIFO");
    let mut o = child.wait_with_output().unwrap();
    o.stderr = reader.join().unwrap().into_bytes();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("a FIFO (named pipe)"), "{err}");
    assert_eq!(json(&o)["summary"]["traces"], 1, "{err}");
}
