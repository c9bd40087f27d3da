//! `lockcheck analyze` end to end: the real binary on the fixtures, every filter, both levels, both
//! formats, merging, exit codes, malformed and truncated input.

mod common;

#[path = "support/scratch.rs"]
mod scratch;

use common::{analyze_json, corpus, filters, fixture, lockcheck, root, violations};
use scratch::Scratch;

#[test]
fn ab_ba_on_two_threads_is_one_violation() {
    let run = analyze_json(&[fixture("ab-ba.json")], &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["version"], 1);
    assert_eq!(violations(&r), 1);
    let v = &r["violations"][0];
    assert_eq!(v["kind"], "lock-order-inversion");
    assert_eq!(v["level"], "instance");
    assert_eq!(v["locks"][0]["class"], "accounts");
    assert_eq!(v["edges"][0]["thread"], "transfer-1");
    assert_eq!(v["edges"][0]["site"], "src/bank.rs:21:9");
    assert_eq!(v["edges"][0]["held"][0]["site"], "src/bank.rs:20:9");
    assert_eq!(v["edges"][0]["frames"][0]["fn"], "bank::transfer");
    assert_eq!(v["edges"][1]["thread"], "audit");
    assert!(v["id"].as_str().unwrap().len() == 16);
    assert_eq!(r["summary"]["violations"], 1);
    assert_eq!(r["summary"]["complete"], true);
}

/// A sync lock held across `.await` by one task (its holder, never declared in the trace: its
/// acquisition is in the worker thread's stream) while another task of the thread acquires it:
/// the text report's title says what it is, and the holder is named as the runtime names it.
#[test]
fn a_lock_held_across_await_is_titled_as_such_with_its_holder_task_named() {
    let run = analyze_json(&[fixture("held-across-await.json")], &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r = run.json();
    assert_eq!(violations(&r), 1);
    let v = &r["violations"][0];
    assert_eq!(v["kind"], "held-across-await");
    assert_eq!(v["edges"][0]["thread"], "task #2");
    assert_eq!(
        v["edges"][0]["held"][0]["lock"],
        "app.state (held by task #1, suspended at an .await)"
    );
    let text = lockcheck([
        "analyze",
        "--no-config",
        fixture("held-across-await.json").to_str().unwrap(),
    ]);
    assert_eq!(text.code, Some(1));
    let title = text
        .stdout
        .lines()
        .find(|l| l.starts_with("VIOLATION"))
        .expect("a title line");
    assert!(
        title.contains("held across await: app.state, held by a suspended task, acquired again by task #2 at src/app.rs:18:20"),
        "{title}"
    );
    assert!(
        !text.stdout.contains("lock-order inversion"),
        "{}",
        text.stdout
    );
    assert!(
        !text.stdout.contains("T4611686018427387905"),
        "{}",
        text.stdout
    );
}

#[test]
fn the_id_of_a_violation_is_stable() {
    let a = analyze_json(&[fixture("ab-ba.json")], &[]).json();
    let b = analyze_json(&[fixture("ab-ba.json")], &[]).json();
    assert_eq!(a["violations"][0]["id"], b["violations"][0]["id"]);
}

/// The names of a JSON violation's locks, sorted.
fn lock_names(v: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = v["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Two different cycles over instances of one class, in a trace without sites: locks 1 and 2
/// in both orders, and locks 2 and 3 (all of class `group1`). Their ids hash the class keys
/// and the sites, here `group1` twice and nothing, so they were one id and the second root
/// cause was dropped without a word (found by the brute-force oracle, tests/analyze_oracle.rs).
/// Both are reported, with two ids, each naming its own edges; the same trace with one site per
/// acquisition was reported right before too.
#[test]
fn two_siteless_cycles_over_one_class_are_two_findings() {
    let dir = Scratch::new("cli-siteless-ids");
    let trace = dir.join("siteless.json");
    let events = [
        r#"{"e":"header","version":1,"pid":1,"program":"o"}"#,
        r#"{"e":"class","c":101,"key":"group1","kind":"mutex"}"#,
        r#"{"e":"lock","l":1,"c":101}"#,
        r#"{"e":"lock","l":2,"c":101}"#,
        r#"{"e":"lock","l":3,"c":101}"#,
        r#"{"e":"acquire","t":1,"l":2,"m":"w"}"#,
        r#"{"e":"acquire","t":1,"l":1,"m":"w"}"#,
        r#"{"e":"acquire","t":1,"l":3,"m":"w"}"#,
        r#"{"e":"release","t":1,"l":3}"#,
        r#"{"e":"release","t":1,"l":1}"#,
        r#"{"e":"release","t":1,"l":2}"#,
        r#"{"e":"acquire","t":2,"l":1,"m":"w"}"#,
        r#"{"e":"acquire","t":2,"l":2,"m":"w"}"#,
        r#"{"e":"release","t":2,"l":2}"#,
        r#"{"e":"release","t":2,"l":1}"#,
        r#"{"e":"acquire","t":2,"l":3,"m":"w"}"#,
        r#"{"e":"acquire","t":2,"l":2,"m":"w"}"#,
        r#"{"e":"release","t":2,"l":2}"#,
        r#"{"e":"release","t":2,"l":3}"#,
    ];
    std::fs::write(&trace, events.join("\n") + "\n").unwrap();
    let run = analyze_json(&[trace.to_path_buf()], &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r = run.json();
    let vs = r["violations"].as_array().unwrap();
    let mut locks: Vec<Vec<String>> = vs.iter().map(lock_names).collect();
    locks.sort();
    assert_eq!(
        locks,
        [["group1#1", "group1#2"], ["group1#2", "group1#3"]],
        "{vs:#?}"
    );
    assert_ne!(vs[0]["id"], vs[1]["id"]);
    // And stable from run to run.
    let again = analyze_json(&[trace.to_path_buf()], &[]).json();
    assert_eq!(again["violations"], r["violations"]);
}

/// A writer that numbers its locks by address (against the format: a dropped lock's number is
/// never used again) declares another lock under a dropped lock's number. The two are distinct
/// locks: T1 orders A before B, T2 orders B before C, and no run deadlocks. Taken as one lock
/// (the analyzer once ignored `drop`), `A#1` and `C` made one instance-level AB-BA cycle. Without
/// the `drop` the number is still A's (a repeated declaration keeps the first), the inversion
/// real; and an event on the dropped number before a new declaration is a lock never declared,
/// warned about.
#[test]
fn a_lock_number_declared_again_after_its_drop_is_another_lock() {
    let dir = Scratch::new("cli-drop-reuse");
    let trace = |name: &str, drop: bool, redeclare: bool| {
        let mut events = vec![
            r#"{"e":"header","version":1,"pid":1,"program":"o"}"#,
            r#"{"e":"class","c":1,"key":"A","kind":"mutex"}"#,
            r#"{"e":"class","c":2,"key":"B","kind":"mutex"}"#,
            r#"{"e":"class","c":3,"key":"C","kind":"mutex"}"#,
            r#"{"e":"lock","l":1,"c":1}"#,
            r#"{"e":"lock","l":2,"c":2}"#,
            r#"{"e":"acquire","t":1,"l":1,"m":"w"}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w"}"#,
            r#"{"e":"release","t":1,"l":2}"#,
            r#"{"e":"release","t":1,"l":1}"#,
        ];
        if drop {
            events.push(r#"{"e":"drop","l":1}"#);
        }
        if redeclare {
            events.push(r#"{"e":"lock","l":1,"c":3}"#);
        }
        events.extend([
            r#"{"e":"acquire","t":2,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":2,"l":1,"m":"w"}"#,
            r#"{"e":"release","t":2,"l":1}"#,
            r#"{"e":"release","t":2,"l":2}"#,
        ]);
        let path = dir.join(name);
        std::fs::write(&path, events.join("\n") + "\n").unwrap();
        analyze_json(&[path], &[])
    };
    let reused = trace("reused.json", true, true);
    assert_eq!(reused.code, Some(0), "{}", reused.stdout);
    let r = reused.json();
    assert_eq!(violations(&r), 0, "{r:#}");
    assert_eq!(r["summary"]["locks"], 3, "{:#}", r["summary"]);
    assert!(
        r["warnings"].as_array().unwrap().is_empty(),
        "{:#}",
        r["warnings"]
    );
    // The look-alike that is an inversion: the same number, never dropped.
    let kept = trace("kept.json", false, true);
    assert_eq!(kept.code, Some(1), "{}", kept.stderr);
    assert_eq!(violations(&kept.json()), 1);
    // Used after its drop without a new declaration: a lock never declared, said so.
    let stale = trace("stale.json", true, false);
    let r = stale.json();
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("never declared")),
        "{:#}",
        r["warnings"]
    );
}

/// The cycle L -> M -> N -> L: T1 read-locks L and locks M, spawns T3, and does it again; T4
/// locks M then N; T2 locks N then read-locks L; T3 write-locks L. The documented read-read rule
/// leaves out a write ordered before or after either of the two dependencies: T3's write is
/// after T1's first section (T3 knows it from the fork), so that section closes no cycle; it is
/// ordered with neither T1's second section nor T2's, which do (reported when T1 makes the
/// second section alone). The successor lists remembered a verdict per held set, and T1's two
/// sections hold the same set: the first one's "no" served the second, and nothing was
/// reported. Both traces now report the cycle through T1's second section. (Before the rule
/// left out a write after either dependency, T3 joined T2 first, for a write after both of
/// T1's first section and T2's: with the join, no section closes a cycle now.)
#[test]
fn a_read_section_repeated_at_another_clock_keeps_its_own_verdict() {
    let dir = Scratch::new("cli-read-verdict-per-holder");
    let trace = |first_section: bool| {
        let sec = |t: u32, (a, ma): (u32, &str), (b, mb): (u32, &str), s: u32| {
            format!(
                "{{\"e\":\"acquire\",\"t\":{t},\"l\":{a},\"m\":\"{ma}\",\"s\":{s}}}\n\
                 {{\"e\":\"acquire\",\"t\":{t},\"l\":{b},\"m\":\"{mb}\",\"s\":{}}}\n\
                 {{\"e\":\"release\",\"t\":{t},\"l\":{b}}}\n\
                 {{\"e\":\"release\",\"t\":{t},\"l\":{a}}}\n",
                s + 1
            )
        };
        let mut text = String::from(
            "{\"e\":\"header\",\"version\":1,\"pid\":1,\"program\":\"o\"}\n\
             {\"e\":\"class\",\"c\":1,\"key\":\"L\",\"kind\":\"rwlock\"}\n\
             {\"e\":\"class\",\"c\":2,\"key\":\"M\",\"kind\":\"mutex\"}\n\
             {\"e\":\"class\",\"c\":3,\"key\":\"N\",\"kind\":\"mutex\"}\n\
             {\"e\":\"lock\",\"l\":1,\"c\":1}\n\
             {\"e\":\"lock\",\"l\":2,\"c\":2}\n\
             {\"e\":\"lock\",\"l\":3,\"c\":3}\n",
        );
        if first_section {
            text += &sec(1, (1, "r"), (2, "w"), 1);
        }
        text += "{\"e\":\"fork\",\"t\":1,\"child\":3}\n";
        text += &sec(1, (1, "r"), (2, "w"), 1);
        text += &sec(4, (2, "w"), (3, "w"), 3);
        text += &sec(2, (3, "w"), (1, "r"), 5);
        text += "{\"e\":\"acquire\",\"t\":3,\"l\":1,\"m\":\"w\",\"s\":7}\n\
                 {\"e\":\"release\",\"t\":3,\"l\":1}\n";
        let path = dir.join(if first_section {
            "twice.json"
        } else {
            "once.json"
        });
        std::fs::write(&path, text).unwrap();
        path.to_path_buf()
    };
    for first_section in [false, true] {
        let run = analyze_json(&[trace(first_section)], &[]);
        assert_eq!(run.code, Some(1), "{first_section}: {}", run.stderr);
        let r = run.json();
        assert_eq!(violations(&r), 1, "{first_section}");
        assert_eq!(
            lock_names(&r["violations"][0]),
            ["L", "M", "N"],
            "{first_section}"
        );
    }
}

/// Who write-locks L in [`read_read_trace`], the cycle L -> M -> L of two readers of L: T1
/// read-locks L and then locks M; T2 locks M and then read-locks L.
#[derive(Clone, Copy, Debug, PartialEq)]
enum RrWriter {
    /// T1 forks T3 while it read-holds L (before it locks M); T3 joins T2, then write-locks L:
    /// after T2's dependency, so never made while T2 waits for good (the false alarm of the
    /// rule that left out only a write after both dependencies).
    JoinsReader,
    /// The same without the join: T3's write is ordered with neither dependency, it can be
    /// the queued writer (a deadlock).
    Unjoined,
    /// T2 itself write-locks L before its section: granted before its read request.
    Reader,
    /// T1 forks T3 after its section; T3 write-locks L: after T1's dependency only.
    AfterHolder,
    /// T3 write-locks L, then forks T2: before T2's dependency only.
    BeforeRequester,
    /// A task (its number has bit 62 set) write-locks L, then makes T2's section itself: the
    /// runtime does not know a task's clock and counts its write between every two reads, also
    /// those of the task (offline equals runtime).
    TaskReader,
}

/// A trace of the cycle L -> M -> L with `writer`'s write of L (see [`RrWriter`]), in JSON Lines.
fn read_read_trace(dir: &Scratch, writer: RrWriter) -> std::path::PathBuf {
    let ev = |e: &str| format!("{{{e}}}\n");
    let acq = |t: u64, l: u32, m: &str, s: u32| {
        ev(&format!(
            r#""e":"acquire","t":{t},"l":{l},"m":"{m}","s":{s}"#
        ))
    };
    let rel = |t: u64, l: u32| ev(&format!(r#""e":"release","t":{t},"l":{l}"#));
    let fork = |t: u64, c: u64| ev(&format!(r#""e":"fork","t":{t},"child":{c}"#));
    let join = |t: u64, c: u64| ev(&format!(r#""e":"join","t":{t},"child":{c}"#));
    let write = |t: u64| acq(t, 1, "w", 9) + &rel(t, 1);
    let t2 = if writer == RrWriter::TaskReader {
        (1 << 62) | 2
    } else {
        2
    };
    let mut text = String::from(
        "{\"e\":\"header\",\"version\":1,\"pid\":1,\"program\":\"o\"}\n\
         {\"e\":\"class\",\"c\":1,\"key\":\"L\",\"kind\":\"rwlock\"}\n\
         {\"e\":\"class\",\"c\":2,\"key\":\"M\",\"kind\":\"mutex\"}\n\
         {\"e\":\"lock\",\"l\":1,\"c\":1}\n\
         {\"e\":\"lock\",\"l\":2,\"c\":2}\n",
    );
    // T1's section, with a fork of T3 inside it or after it.
    text += &acq(1, 1, "r", 1);
    if matches!(writer, RrWriter::JoinsReader | RrWriter::Unjoined) {
        text += &fork(1, 3);
    }
    text += &(acq(1, 2, "w", 2) + &rel(1, 2) + &rel(1, 1));
    if writer == RrWriter::AfterHolder {
        text += &fork(1, 3);
    }
    // What comes before T2's section.
    match writer {
        RrWriter::Reader | RrWriter::TaskReader => text += &write(t2),
        RrWriter::BeforeRequester => text += &(write(3) + &fork(3, 2)),
        _ => {}
    }
    text += &(acq(t2, 2, "w", 3) + &acq(t2, 1, "r", 4) + &rel(t2, 1) + &rel(t2, 2));
    match writer {
        RrWriter::JoinsReader => text += &(join(3, 2) + &write(3)),
        RrWriter::Unjoined | RrWriter::AfterHolder => text += &write(3),
        _ => {}
    }
    let path = dir.join(format!("{writer:?}.json"));
    std::fs::write(&path, text).unwrap();
    path.to_path_buf()
}

/// The read-read rule counts a write only if it can be the writer queued between the two reads
/// while both dependencies wait for good: made by neither reader's thread, ordered by fork/join
/// neither before nor after either dependency (at both levels). Each write left out here was
/// counted by the rule that left out only a write ordered before both dependencies or after both
/// (it reported the cycle in all six traces); the task's write is counted as the runtime counts
/// it (left out as a write of a reader's thread, if noted with the task's clock).
#[test]
fn the_read_read_rule_counts_only_a_write_that_can_be_queued_between_the_reads() {
    let dir = Scratch::new("cli-read-read-queued-writer");
    for writer in [
        RrWriter::JoinsReader,
        RrWriter::Unjoined,
        RrWriter::Reader,
        RrWriter::AfterHolder,
        RrWriter::BeforeRequester,
        RrWriter::TaskReader,
    ] {
        let trace = read_read_trace(&dir, writer);
        let counted = matches!(writer, RrWriter::Unjoined | RrWriter::TaskReader);
        for level in ["instance", "class"] {
            let run = analyze_json(std::slice::from_ref(&trace), &["--level", level]);
            let r = run.json();
            if counted {
                assert_eq!(run.code, Some(1), "{writer:?} {level}: {}", run.stderr);
                assert_eq!(violations(&r), 1, "{writer:?} {level}");
                assert_eq!(lock_names(&r["violations"][0]), ["L", "M"], "{writer:?}");
            } else {
                assert_eq!(run.code, Some(0), "{writer:?} {level}: {}", run.stdout);
                assert_eq!(violations(&r), 0, "{writer:?} {level}");
                assert_eq!(filters(&r), ["read-read"], "{writer:?} {level}");
            }
        }
    }
}

fn only_filtered(name: &str, filter: &str) {
    let run = analyze_json(&[fixture(name)], &[]);
    assert_eq!(run.code, Some(0), "{name}: {}{}", run.stdout, run.stderr);
    let r = run.json();
    assert_eq!(violations(&r), 0, "{name}");
    assert_eq!(filters(&r), vec![filter.to_string()], "{name}");
    assert_eq!(r["summary"]["filtered_by"][0]["filter"], filter);
}

#[test]
fn one_thread_alone_is_filtered_as_same_thread() {
    only_filtered("same-thread.json", "same-thread");
}

#[test]
fn a_common_gate_lock_is_filtered() {
    only_filtered("gate-lock.json", "gate-lock");
    let r = analyze_json(&[fixture("gate-lock.json")], &[]).json();
    assert!(
        r["filtered"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("gate"),
        "{r}"
    );
}

#[test]
fn fork_join_ordering_is_filtered() {
    only_filtered("fork-join.json", "fork-join");
}

#[test]
fn read_read_on_a_lock_never_written_is_filtered() {
    only_filtered("read-read.json", "read-read");
}

#[test]
fn read_read_with_a_writer_elsewhere_is_a_violation() {
    let run = analyze_json(&[fixture("read-read-writer.json")], &[]);
    assert_eq!(run.code, Some(1));
    assert_eq!(violations(&run.json()), 1);
}

#[test]
fn a_try_lock_closing_the_cycle_is_filtered() {
    only_filtered("try-lock.json", "try-lock");
}

#[test]
fn a_timed_lock_is_filtered_and_its_fired_timeout_flagged() {
    only_filtered("timed-lock.json", "timed-lock");
    let r = analyze_json(&[fixture("timed-lock.json")], &[]).json();
    let flags: Vec<String> = r["timeouts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            t["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["kind"].as_str().unwrap().to_string())
        })
        .collect();
    assert!(flags.contains(&"timeouts-fired".to_string()), "{flags:?}");
}

#[test]
fn class_level_inversion_on_distinct_instances() {
    let run = analyze_json(&[fixture("class-inversion.json")], &[]);
    assert_eq!(run.code, Some(1));
    let r = run.json();
    assert_eq!(violations(&r), 1);
    assert_eq!(r["violations"][0]["level"], "class");
    // Instance level alone sees no cycle.
    let run = analyze_json(&[fixture("class-inversion.json")], &["--level", "instance"]);
    assert_eq!(run.code, Some(0));
    assert_eq!(violations(&run.json()), 0);
    let run = analyze_json(&[fixture("class-inversion.json")], &["--level", "class"]);
    assert_eq!(run.code, Some(1));
}

#[test]
fn an_instance_violation_is_not_repeated_at_class_level() {
    let r = analyze_json(&[fixture("ab-ba.json")], &["--level", "both"]).json();
    assert_eq!(violations(&r), 1);
    assert_eq!(r["violations"][0]["level"], "instance");
    assert_eq!(r["violations"][0]["class_cycle"][0], "accounts");
    let r = analyze_json(&[fixture("ab-ba.json")], &["--level", "class"]).json();
    assert_eq!(violations(&r), 1);
    assert_eq!(r["violations"][0]["level"], "class");
}

#[test]
fn two_locks_of_one_class_nested_in_one_order_are_fine() {
    let run = analyze_json(&[fixture("same-class-nested.json")], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let r = run.json();
    assert_eq!(violations(&r), 0);
    assert_eq!(filters(&r), Vec::<String>::new());
}

#[test]
fn orders_of_two_traces_merge_by_class_key() {
    let a = analyze_json(&[fixture("merge/a.json")], &[]);
    assert_eq!(a.code, Some(0));
    let b = analyze_json(&[fixture("merge/b.json")], &[]);
    assert_eq!(b.code, Some(0));
    let both = analyze_json(&[fixture("merge/a.json"), fixture("merge/b.json")], &[]);
    assert_eq!(both.code, Some(1));
    let r = both.json();
    assert_eq!(violations(&r), 1);
    assert_eq!(r["violations"][0]["level"], "class");
    assert_eq!(r["summary"]["traces"], 2);
}

#[test]
fn a_directory_is_expanded_to_its_traces() {
    let run = analyze_json(&[fixture("merge")], &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.json()["summary"]["traces"], 2);
}

#[test]
fn a_trace_cut_in_a_deadlock_shows_the_waiting_threads() {
    let run = analyze_json(&[fixture("three-way-deadlock.json")], &[]);
    assert_eq!(run.code, Some(1));
    let r = run.json();
    assert_eq!(r["violations"][0]["locks"].as_array().unwrap().len(), 3);
    assert_eq!(r["violations"][0]["edges"][0]["waiting_at_end"], true);
}

#[test]
fn a_truncated_trace_is_an_error_unless_allowed() {
    let run = lockcheck(["analyze".as_ref(), fixture("truncated.json").as_os_str()]);
    assert_eq!(run.code, Some(2));
    let line = run.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("lockcheck: error: "), "{line}");
    assert!(line.contains("truncated.json:14:"), "{line}");
    assert!(line.contains("--allow-truncated"), "{line}");

    let run = analyze_json(&[fixture("truncated.json")], &["--allow-truncated"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r = run.json();
    assert_eq!(violations(&r), 1);
    assert!(
        r["summary"]["truncated"][0]
            .as_str()
            .unwrap()
            .contains("line 14"),
        "{r}"
    );
}

#[test]
fn malformed_inputs_exit_2_with_file_and_position() {
    let bad = root("fixtures/bad");
    let mut seen = 0;
    for entry in std::fs::read_dir(&bad).expect("fixtures/bad exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let run = lockcheck(["analyze".as_ref(), path.as_os_str()]);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if run.code == Some(0) {
            // Some "bad" files are merely empty: an empty trace is valid (nothing to report).
            continue;
        }
        seen += 1;
        assert_eq!(run.code, Some(2), "{name}: {}", run.stderr);
        let line = run.stderr.trim();
        assert_eq!(line.lines().count(), 1, "{name}: {line}");
        assert!(line.starts_with("lockcheck: error: "), "{name}: {line}");
        assert!(line.contains(&name), "{name}: {line}");
        assert!(!line.contains("panicked"), "{name}: {line}");
    }
    assert!(seen >= 10, "only {seen} malformed fixtures failed");
}

#[test]
fn a_missing_file_exits_2() {
    let run = lockcheck(["analyze", "no/such/trace.json"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with("lockcheck: error: no/such/trace.json"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(lockcheck(["analyze"]).code, Some(2));
    assert_eq!(
        lockcheck(["analyze", "--format", "yaml", "x.json"]).code,
        Some(2)
    );
    assert_eq!(lockcheck(["frobnicate"]).code, Some(2));
    assert_eq!(
        lockcheck(["analyze", "--max-cycles", "many", "x.json"]).code,
        Some(2)
    );
}

#[test]
fn text_output_is_a_lockdep_scenario_with_a_summary() {
    let run = lockcheck(["analyze".as_ref(), fixture("ab-ba.json").as_os_str()]);
    assert_eq!(run.code, Some(1));
    let out = &run.stdout;
    assert!(!out.contains('\x1b'), "no colors when not a terminal");
    assert!(out.contains("Possible unsafe locking scenario"), "{out}");
    assert!(out.contains("lock(accounts);"), "{out}");
    assert!(out.contains("lock(src/ledger.rs:14:20);"), "{out}");
    assert!(out.contains("*** DEADLOCK ***"), "{out}");
    assert!(
        out.contains("transfer-1 acquires src/ledger.rs:14:20 (write) at src/bank.rs:21:9"),
        "{out}"
    );
    assert!(out.contains("Suggested lock hierarchy"), "{out}");
    assert!(out.contains("src/audit.rs:41"), "the site to change: {out}");
    assert!(out.contains("Timeouts (per class)"), "{out}");
    let last = out.lines().last().unwrap();
    assert_eq!(
        last,
        "lockcheck: 1 violation in 1 trace, 95 events, 2 locks"
    );
}

#[test]
fn verbose_lists_filtered_candidates_with_their_filter() {
    let quiet = lockcheck(["analyze".as_ref(), fixture("gate-lock.json").as_os_str()]);
    assert_eq!(quiet.code, Some(0));
    assert!(!quiet.stdout.contains("[gate-lock]"));
    assert!(
        quiet.stdout.contains("(1 candidate filtered: gate-lock 1)"),
        "{}",
        quiet.stdout
    );
    let verbose = lockcheck([
        "analyze".as_ref(),
        "--verbose".as_ref(),
        fixture("gate-lock.json").as_os_str(),
    ]);
    assert!(verbose.stdout.contains("[gate-lock]"), "{}", verbose.stdout);
}

#[test]
fn output_and_hierarchy_files_are_written() {
    let dir = Scratch::new("cli");
    let out = dir.join("report.json");
    let rust = dir.join("levels.rs");
    let run = lockcheck([
        "analyze".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "--hierarchy-rust".as_ref(),
        rust.as_os_str(),
        fixture("ab-ba.json").as_os_str(),
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(violations(&report), 1);
    let module = std::fs::read_to_string(&rust).unwrap();
    assert!(module.contains("pub mod lock_levels {"), "{module}");
    assert!(module.contains("pub const ACCOUNTS: u32 = 0;"), "{module}");
    assert!(
        module.contains("pub const SRC_LEDGER_RS_14_20: u32 = 1;"),
        "{module}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_clean_trace_exits_0() {
    let run = lockcheck(["analyze".as_ref(), fixture("clean.json").as_os_str()]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with("lockcheck: 0 violations in 1 trace, 14 events, 2 locks\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn bensalem_has_exactly_one_violation_on_locks_7_and_8() {
    let run = analyze_json(&[corpus("std", "Bensalem.std")], &[]);
    assert_eq!(run.code, Some(1));
    let r = run.json();
    assert_eq!(violations(&r), 1, "{r}");
    let v = &r["violations"][0];
    let mut locks: Vec<&str> = v["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    locks.sort();
    assert_eq!(locks, vec!["7", "8"]);
    let mut threads: Vec<&str> = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["thread"].as_str().unwrap())
        .collect();
    threads.sort();
    assert_eq!(threads, vec!["T10", "T11"]);
    let mut f = filters(&r);
    f.sort();
    assert_eq!(f, vec!["fork-join", "gate-lock"]);
}

#[test]
fn bensalem_summary_line() {
    let run = lockcheck([
        "analyze".as_ref(),
        corpus("std", "Bensalem.std").as_os_str(),
    ]);
    let last = run.stdout.lines().last().unwrap().to_string();
    assert!(
        last.starts_with(
            "lockcheck: 1 violation (2 candidates filtered: gate-lock 1, fork-join 1) in 1 trace, "
        ),
        "{last}"
    );
    assert!(last.ends_with(", 6 locks"), "{last}");
}

#[test]
fn jigsaw_std_has_no_violation() {
    let run = analyze_json(&[corpus("std", "jigsaw.std")], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r = run.json();
    assert_eq!(violations(&r), 0);
    assert_eq!(r["summary"]["complete"], true);
}

#[test]
fn dining_philosophers_is_a_five_lock_cycle() {
    let run = analyze_json(&[corpus("rapidbin", "DiningPhil.data")], &[]);
    assert_eq!(run.code, Some(1));
    let r = run.json();
    assert_eq!(violations(&r), 1);
    assert_eq!(r["violations"][0]["locks"].as_array().unwrap().len(), 5);
    assert_eq!(r["violations"][0]["edges"].as_array().unwrap().len(), 5);
}

#[test]
fn the_input_format_can_be_forced() {
    let dir = Scratch::new("cli-fmt");
    let copy = dir.join("bensalem.trace");
    std::fs::copy(corpus("std", "Bensalem.std"), &copy).unwrap();
    let run = analyze_json(std::slice::from_ref(&copy), &["--input-format", "std"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    // Without the option its content (STD lines) says the format, whatever the name.
    let run = analyze_json(std::slice::from_ref(&copy), &[]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    // Forced as JSON it is malformed.
    let run = analyze_json(&[copy], &["--input-format", "json"]);
    assert_eq!(run.code, Some(2));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_largest_corpus_traces_finish_quickly_and_completely() {
    for name in ["jigsaw.data", "cache4j_dlf.data"] {
        let start = std::time::Instant::now();
        let run = analyze_json(&[corpus("rapidbin", name)], &[]);
        assert!(
            run.code == Some(0) || run.code == Some(1),
            "{name}: {}",
            run.stderr
        );
        let r = run.json();
        assert_eq!(
            r["summary"]["complete"], true,
            "{name}: {:?}",
            r["warnings"]
        );
        // Generous for unoptimized test builds; release builds take a fraction of a second.
        assert!(
            start.elapsed().as_secs() < 60,
            "{name} took {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn a_tiny_step_bound_names_the_limit_and_exits_3() {
    let run = analyze_json(
        &[corpus("rapidbin", "DiningPhil.data")],
        &["--max-steps", "1"],
    );
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["summary"]["complete"], false);
    assert_eq!(r["summary"]["violations"], 0);
    let w = r["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("results may be incomplete") && w.contains("--max-steps")
        }),
        "{w:?}"
    );
    // Opting out: the same warning, exit 0.
    let run = analyze_json(
        &[corpus("rapidbin", "DiningPhil.data")],
        &["--max-steps", "1", "--allow-incomplete"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let text = lockcheck([
        "analyze".as_ref(),
        "--max-steps".as_ref(),
        "1".as_ref(),
        corpus("rapidbin", "DiningPhil.data").as_os_str(),
    ]);
    assert_eq!(text.code, Some(3));
    assert!(
        text.stdout.contains("(search incomplete)"),
        "{}",
        text.stdout
    );
    // A raised bound completes the search.
    let run = analyze_json(
        &[corpus("rapidbin", "DiningPhil.data")],
        &["--max-steps", "100000000"],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
}

#[test]
fn a_tiny_listing_bound_never_changes_the_verdict() {
    let run = analyze_json(
        &[corpus("rapidbin", "DiningPhil.data")],
        &["--max-cycles", "0"],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["summary"]["complete"], true);
    assert_eq!(violations(&r), 1);
}

/// A condvar notified by a thread that did not take the mutex its waiter waits with
/// (parity-ethereum#3885's shape): found with `--condvar` (the runtime's opt-in
/// `LOCKCHECK_CONDVAR`), which the summary says; a timed wait on the same condvar is not; nothing
/// without the flag.
#[test]
fn a_notify_without_the_waiters_mutex_is_a_lost_wakeup_with_the_condvar_rule_on() {
    let on = analyze_json(
        &[fixture("lost-wakeup.json")],
        &["--no-config", "--condvar"],
    );
    assert_eq!(on.code, Some(1), "{}", on.stderr);
    let r = on.json();
    assert_eq!(violations(&r), 1, "{r:#}");
    let v = &r["violations"][0];
    assert_eq!(v["kind"], "condvar-lost-wakeup");
    assert_eq!(v["rule"], "lockcheck/condvar-lost-wakeup");
    assert_eq!(v["locks"][0]["class"], "queue.more");
    assert_eq!(v["edges"][0]["thread"], "main");
    assert_eq!(v["edges"][0]["site"], "src/queue.rs:22:5");
    assert_eq!(v["edges"][0]["held"][0]["site"], "src/queue.rs:12:9");
    assert_eq!(r["summary"]["lost_wakeup_rule"], true);
    let text = lockcheck([
        "analyze",
        "--no-config",
        "--condvar",
        fixture("lost-wakeup.json").to_str().unwrap(),
    ]);
    assert_eq!(text.code, Some(1));
    assert!(
        text.stdout.contains("possible lost wakeup: main notifies a condvar at src/queue.rs:22:5 without taking queue.more"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("(condvar rule on)") || text.stderr.contains("(condvar rule on)"),
        "{}",
        text.stderr
    );
    let off = analyze_json(&[fixture("lost-wakeup.json")], &["--no-config"]);
    assert_eq!(off.code, Some(0), "{}", off.stderr);
    let r = off.json();
    assert_eq!(violations(&r), 0, "{r:#}");
    assert!(r["summary"].get("lost_wakeup_rule").is_none());
}

/// An output of `analyze` (`--output`, `--write-baseline`, `--hierarchy-rust`,
/// `--timeouts-toml`) that is one of its traces is refused with exit 2 before anything is read
/// or written: the trace keeps every byte (before, it was replaced by the report).
/// An analysis refused with exit 2 because an output is one of its traces (`what`: which).
fn refused_as_a_trace(run: &common::Run, what: &str) {
    assert_eq!(run.code, Some(2), "{what}: {}", run.stderr);
    assert!(
        run.stderr.contains("also one of the traces"),
        "{what}: {}",
        run.stderr
    );
}

#[test]
fn an_output_that_is_one_of_the_traces_is_refused_and_the_trace_kept() {
    let dir = Scratch::new("cli-output-is-trace");
    let trace = dir.join("run.json");
    std::fs::copy(fixture("ab-ba.json"), &trace).unwrap();
    let before = std::fs::read(&trace).unwrap();
    for flag in [
        "--output",
        "--write-baseline",
        "--hierarchy-rust",
        "--timeouts-toml",
    ] {
        let run = lockcheck([
            "analyze".as_ref(),
            trace.as_os_str(),
            flag.as_ref(),
            trace.as_os_str(),
        ]);
        refused_as_a_trace(&run, flag);
        assert_eq!(std::fs::read(&trace).unwrap(), before, "{flag}");
    }
    // Another file is written as usual.
    let report = dir.join("report.json");
    let run = lockcheck([
        "analyze".as_ref(),
        trace.as_os_str(),
        "--output".as_ref(),
        report.as_os_str(),
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(std::fs::read_to_string(&report)
        .unwrap()
        .contains("violation"));
    // The traces found in a directory count too: that report, now among the directory's
    // `*.json`, is both a trace and the output of this run.
    let written = std::fs::read(&report).unwrap();
    let run = lockcheck([
        "analyze".as_ref(),
        dir.path().as_os_str(),
        "--output".as_ref(),
        report.as_os_str(),
    ]);
    refused_as_a_trace(&run, "a directory's trace");
    assert_eq!(std::fs::read(&report).unwrap(), written);
    assert_eq!(std::fs::read(&trace).unwrap(), before);
}
