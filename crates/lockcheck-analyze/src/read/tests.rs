//! Tests of the readers, over the committed fixtures (`fixtures/`) and generated inputs.

use super::*;
use lockcheck_core::trace::{ClassStats, Frame, How, LockKind, Mode, Short};
use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn fixture(rel: &str) -> PathBuf {
    fixtures().join(rel)
}

/// All events of a file that must read cleanly.
fn read_all(path: &Path) -> Vec<Event> {
    TraceReader::open(path, None)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Reads bytes in `format`, collecting everything the iterator yields (bounded, so a reader that
/// never ends fails the test instead of hanging it).
fn read_bytes(
    bytes: &[u8],
    format: InputFormat,
    allow_truncated: bool,
) -> (Vec<Result<Event, ReadError>>, TraceReader) {
    let mut reader = TraceReader::from_reader("mem", Box::new(Cursor::new(bytes.to_vec())), format)
        .allow_truncated(allow_truncated);
    let limit = bytes.len() * 8 + 16;
    let mut out = Vec::new();
    for item in reader.by_ref() {
        out.push(item);
        assert!(out.len() <= limit, "reader does not end");
    }
    (out, reader)
}

fn only_error(items: &[Result<Event, ReadError>]) -> &ReadError {
    let errors: Vec<&ReadError> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "{items:?}");
    assert!(
        items.last().unwrap().is_err(),
        "the error must end the stream"
    );
    errors[0]
}

fn count(events: &[Event], pred: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

#[test]
fn formats_come_from_extensions_and_names() {
    let f = |p: &str| InputFormat::from_path(Path::new(p));
    assert_eq!(f("a/b.std"), InputFormat::Std);
    assert_eq!(f("x.data"), InputFormat::RapidBin);
    assert_eq!(f("x.BIN"), InputFormat::RapidBin);
    assert_eq!(f("x.rapidbin"), InputFormat::RapidBin);
    assert_eq!(f("x.jsonl"), InputFormat::Json);
    assert_eq!(f("x.json"), InputFormat::Json);
    assert_eq!(f("trace"), InputFormat::Json);
    assert_eq!(f("x.txt"), InputFormat::Json);
    assert_eq!(InputFormat::from_name("json"), Some(InputFormat::Json));
    assert_eq!(InputFormat::from_name("std"), Some(InputFormat::Std));
    assert_eq!(
        InputFormat::from_name("rapid-bin"),
        Some(InputFormat::RapidBin)
    );
    assert_eq!(
        InputFormat::from_name("rapidbin"),
        Some(InputFormat::RapidBin)
    );
    assert_eq!(InputFormat::from_name("xml"), None);
}

#[test]
fn errors_display_file_position_and_message() {
    let e = ReadError::new("t.json", Some(Position::LineCol { line: 3, col: 7 }), "bad");
    assert_eq!(e.to_string(), "t.json:3:7: bad");
    let e = ReadError::new("t.data", Some(Position::Byte(42)), "bad");
    assert_eq!(e.to_string(), "t.data: byte 42: bad");
    let e = ReadError::new("t.json", None, "bad");
    assert_eq!(e.to_string(), "t.json: bad");
}

/// The rows of `fixtures/bad/README.md`: file, position, message fragment.
fn bad_fixture_table() -> Vec<(String, String, String)> {
    let readme = fs::read_to_string(fixture("bad/README.md")).unwrap();
    readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .replace("\\|", "\u{0}")
                .split('|')
                .map(|c| c.trim().replace('\u{0}', "|"))
                .collect();
            assert_eq!(cells.len(), 3, "{l}");
            (
                cells[0].trim_matches('`').to_owned(),
                cells[1].clone(),
                cells[2].clone(),
            )
        })
        .collect()
}

#[test]
fn every_bad_fixture_yields_exactly_one_positioned_error() {
    let table = bad_fixture_table();
    let mut files: Vec<String> = fs::read_dir(fixture("bad"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "README.md")
        .collect();
    files.sort();
    let listed: Vec<&str> = table.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        files, listed,
        "fixtures/bad/README.md must list every file, sorted"
    );
    for (file, pos, fragment) in &table {
        let path = fixture("bad").join(file);
        let reader = TraceReader::open(&path, None).unwrap();
        let items: Vec<_> = reader.collect();
        let err = only_error(&items);
        let text = err.to_string();
        assert!(text.starts_with(&path.display().to_string()), "{text}");
        assert_eq!(
            err.pos.map(|p| p.to_string()).as_deref(),
            Some(pos.as_str()),
            "{text}"
        );
        assert!(
            text.contains(fragment.as_str()),
            "{file}: expected {fragment:?} in {text:?}"
        );
    }
}

#[test]
fn the_iterator_ends_after_an_error() {
    let mut reader = TraceReader::open(&fixture("bad/unknown-tag.json"), None).unwrap();
    assert!(reader.by_ref().any(|e| e.is_err()));
    assert!(reader.next().is_none());
    assert!(reader.next().is_none());
}

#[test]
fn json_fixtures_read_every_event_kind() {
    let events = read_all(&fixture("json/all-events.jsonl"));
    assert_eq!(events.len(), 29);
    assert!(
        matches!(&events[0], Event::Header { version: 1, pid: 7, program, .. } if program == "every-event")
    );
    assert!(events.contains(&Event::Lock {
        l: 3,
        c: 3,
        permits: Some(4)
    }));
    assert!(events.contains(&Event::CondWait {
        t: 1,
        cv: 4,
        l: 1,
        timed: false
    }));
    assert!(events.contains(&Event::Drop { l: 2 }));
    let tags: std::collections::BTreeSet<&str> = events.iter().map(tag).collect();
    assert_eq!(tags.len(), 15, "{tags:?}");

    let abba = read_all(&fixture("json/abba.jsonl"));
    assert_eq!(count(&abba, |e| matches!(e, Event::Acquire { .. })), 4);

    let mut reader = TraceReader::open(&fixture("json/no-final-newline.jsonl"), None).unwrap();
    assert!(reader.by_ref().take(3).all(|e| e.is_ok()));
    assert_eq!(read_all(&fixture("json/no-final-newline.jsonl")).len(), 2);
    assert_eq!(reader.truncated(), None);
}

#[test]
fn bensalem_std_has_four_threads_and_six_locks() {
    let events = read_all(&fixture("std/Bensalem.std"));
    assert!(
        matches!(&events[0], Event::Header { version: 1, pid: 0, program, .. } if program == "Bensalem.std")
    );
    let threads: Vec<(u64, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Thread { t, name } => Some((*t, name.clone().unwrap())),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = threads.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["T6", "T9", "T10", "T11"]);
    assert_eq!(
        threads.iter().map(|t| t.0).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let keys: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Class {
                key,
                kind: LockKind::Unknown,
                ..
            } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(keys, ["9", "5", "7", "8", "10", "11"]);
    assert_eq!(count(&events, |e| matches!(e, Event::Lock { .. })), 6);
    assert_eq!(
        count(&events, |e| matches!(
            e,
            Event::Acquire {
                m: Mode::Exclusive,
                how: How::Blocking,
                ..
            }
        )),
        13
    );
    assert_eq!(count(&events, |e| matches!(e, Event::Request { .. })), 13);
    assert_eq!(count(&events, |e| matches!(e, Event::Release { .. })), 13);
    // `fork(11)` in T9's line and the `T11|...` lines are the same thread.
    assert!(events.contains(&Event::Fork { t: 2, child: 4 }));
    assert!(events.contains(&Event::Join {
        t: 2,
        child: 4,
        scope: false
    }));
    assert!(events.contains(&Event::Fork { t: 1, child: 2 }));
    // Every thread, lock and site is declared before its first use.
    assert_declared_before_use(&events);
    let site = events.iter().find_map(|e| match e {
        Event::Site { s: 1, loc, .. } => Some(loc.as_str()),
        _ => None,
    });
    assert_eq!(site, Some("loc 51"));
}

#[test]
fn jigsaw_std_reads_whole() {
    let events = read_all(&fixture("std/jigsaw.std"));
    assert_eq!(count(&events, |e| matches!(e, Event::Thread { .. })), 3);
    assert_eq!(count(&events, |e| matches!(e, Event::Lock { .. })), 175);
    assert_eq!(count(&events, |e| matches!(e, Event::Acquire { .. })), 3594);
    assert_eq!(count(&events, |e| matches!(e, Event::Release { .. })), 3592);
    assert_declared_before_use(&events);
}

/// Acquisitions per file, counted independently of the reader from the records' op bits.
const RAPIDBIN: &[(&str, usize, usize)] = &[
    ("Account.data", 72, 5),
    ("Bensalem.data", 12, 3),
    ("Bensalem_dlf.data", 13, 3),
    ("Dbcp1.data", 28, 2),
    ("Dbcp2.data", 38, 2),
    ("Deadlock.data", 4, 2),
    ("DiningPhil.data", 50, 5),
    ("StringBuffer.data", 7, 2),
    ("Transfer.data", 8, 2),
    ("cache4j_dlf.data", 24737, 1),
    ("jigsaw.data", 33539, 20),
];

#[test]
fn rapidbin_corpus_reads_with_the_declared_event_count() {
    let mut files: Vec<String> = fs::read_dir(fixture("rapidbin"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".data"))
        .collect();
    files.sort();
    assert_eq!(files, RAPIDBIN.iter().map(|r| r.0).collect::<Vec<_>>());
    for &(file, acquires, forks) in RAPIDBIN {
        let path = fixture("rapidbin").join(file);
        let bytes = fs::read(&path).unwrap();
        let declared = i64::from_be_bytes(bytes[10..18].try_into().unwrap()) as u64;
        let threads = i16::from_be_bytes([bytes[0], bytes[1]]) as usize;
        let mut reader = TraceReader::open(&path, None).unwrap();
        let events: Vec<Event> = reader
            .by_ref()
            .map(|e| e.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let Decoder::RapidBin(d) = &reader.decoder else {
            unreachable!()
        };
        assert_eq!(d.records, declared, "{file}");
        assert!(matches!(&events[0], Event::Header { program, .. } if program == file));
        assert_eq!(
            count(&events, |e| matches!(e, Event::Acquire { .. })),
            acquires,
            "{file}"
        );
        assert_eq!(
            count(&events, |e| matches!(e, Event::Fork { .. })),
            forks,
            "{file}"
        );
        assert!(
            count(&events, |e| matches!(e, Event::Thread { .. })) <= threads,
            "{file}"
        );
        assert_declared_before_use(&events);
    }
    let dining = read_all(&fixture("rapidbin/DiningPhil.data"));
    assert!(dining
        .iter()
        .any(|e| matches!(e, Event::Class { key, .. } if key == "L0")));
    assert!(dining
        .iter()
        .any(|e| matches!(e, Event::Thread { name: Some(n), .. } if n == "T0")));
}

fn assert_declared_before_use(events: &[Event]) {
    use std::collections::HashSet;
    let (mut threads, mut locks, mut sites, mut classes) = (
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
        HashSet::new(),
    );
    for e in events {
        match e {
            Event::Thread { t, .. } => assert!(threads.insert(*t), "thread {t} declared twice"),
            Event::Class { c, .. } => assert!(classes.insert(*c)),
            Event::Lock { l, c, .. } => {
                assert!(classes.contains(c));
                assert!(locks.insert(*l));
            }
            Event::Site { s, .. } => assert!(sites.insert(*s)),
            Event::Acquire { t, l, s, .. } | Event::Request { t, l, s, .. } => {
                assert!(threads.contains(t) && locks.contains(l), "{e:?}");
                assert!(s.is_none_or(|s| sites.contains(&s)), "{e:?}");
            }
            Event::Release { t, l, .. } => {
                assert!(threads.contains(t) && locks.contains(l), "{e:?}")
            }
            Event::Fork { t, child } | Event::Join { t, child, .. } => {
                assert!(threads.contains(t) && threads.contains(child), "{e:?}")
            }
            _ => {}
        }
    }
    // Dense numbering from 1.
    for set in [&threads, &locks] {
        assert!((1..=set.len() as u64).all(|n| set.contains(&n)));
    }
}

#[test]
fn std_lines_accept_variants_of_the_syntax() {
    let text = "T1|begin|0\r\nmain|acq(l_5)|7\n\n1|fork(T2)|8\nT2|w(V1)|9\nT2|acq(5)\n T2 | rel( 5 ) | 10 \nT1|join(2)|11\nT1|end()|12\nT1|branch|13\n";
    let (items, reader) = read_bytes(text.as_bytes(), InputFormat::Std, false);
    let events: Vec<Event> = items.into_iter().map(|e| e.unwrap()).collect();
    assert_eq!(reader.truncated(), None);
    let names: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Thread { name, .. } => name.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["T1", "main", "T2"]);
    assert!(events.contains(&Event::Fork { t: 1, child: 3 }));
    assert!(events.contains(&Event::Join {
        t: 1,
        child: 3,
        scope: false
    }));
    assert!(events.contains(&Event::Acquire {
        t: 3,
        l: 2,
        m: Mode::Exclusive,
        how: How::Blocking,
        s: None,
        wait_ns: 0
    }));
    assert!(events.contains(&Event::Release {
        t: 3,
        l: 2,
        hold_ns: 0
    }));
    assert!(events.contains(&Event::Class {
        c: 1,
        key: "l_5".into(),
        kind: LockKind::Unknown
    }));
}

/// Bare numeric lock names (the research traces' `acq(7)`) are looked up in a table too: `7` is
/// not `L7`, and `07` is a name of its own.
#[test]
fn std_bare_numeric_lock_names_are_locks_of_their_own() {
    // The research traces' `acq(7)`: lock `7`, not `L7`, and `07` another one; in first-seen
    // order, through the fast path and the full one alike (a blank sends a line to the latter).
    let text =
        "T1|acq(7)|1\nT1|acq(L7)|1\nT1| acq(07)|1\nT1|rel(7)\nT1|acq( 7)|1\nT2|r(5)|3\nT3|w(5)\n";
    let (items, _) = read_bytes(text.as_bytes(), InputFormat::Std, false);
    let events: Vec<Event> = items.into_iter().map(|e| e.unwrap()).collect();
    let classes: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Class { key, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(classes, ["7", "L7", "07"]);
    let acquired: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Acquire { l, .. } => Some(*l),
            _ => None,
        })
        .collect();
    assert_eq!(acquired.len(), 4);
    assert_eq!(acquired[0], acquired[3], "`7` and ` 7` are one lock");
    // Memory accesses declare their threads and nothing else.
    let threads = events
        .iter()
        .filter(|e| matches!(e, Event::Thread { .. }))
        .count();
    assert_eq!(threads, 3);
}

/// `L<n>` lock names and numeric locations are looked up in tables: every other spelling
/// (`L07`, `L`, `007`) is still a name of its own, and numbers are given in order of first sight.
#[test]
fn std_numeric_names_keep_their_spelling_and_order() {
    let text = "T1|acq(L7)|42\nT1|acq(L07)|042\nT1|acq(L)|x\nT1|acq(l7)|42\nT1|rel(L7)|0\nT1|acq(L300000)|7\n";
    let (items, _) = read_bytes(text.as_bytes(), InputFormat::Std, false);
    let events: Vec<Event> = items.into_iter().map(|e| e.unwrap()).collect();
    let classes: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Class { key, .. } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(classes, ["L7", "L07", "L", "l7", "L300000"]);
    let sites: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Site { loc, .. } => Some(loc.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(sites, ["loc 42", "loc 042", "loc x", "loc 7"]);
    let acquired: Vec<(u64, Option<u32>)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Acquire { l, s, .. } => Some((*l, *s)),
            _ => None,
        })
        .collect();
    assert_eq!(
        acquired,
        [
            (1, Some(1)),
            (2, Some(2)),
            (3, Some(3)),
            (4, Some(1)),
            (5, Some(4))
        ]
    );
    assert!(events.contains(&Event::Release {
        t: 1,
        l: 1,
        hold_ns: 0
    }));
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let (items, _) = read_bytes(b"\xEF\xBB\xBFT1|acq(L1)|1\n", InputFormat::Std, false);
    assert!(items.iter().all(|i| i.is_ok()), "{items:?}");
    let (items, _) = read_bytes(
        b"\xEF\xBB\xBF{\"e\":\"header\",\"version\":1,\"pid\":1}\n",
        InputFormat::Json,
        false,
    );
    assert_eq!(items.len(), 1);
    assert!(items[0].is_ok(), "{items:?}");
}

#[test]
fn truncated_json_is_an_error_unless_allowed() {
    let path = fixture("bad/truncated.jsonl");
    let items: Vec<_> = TraceReader::open(&path, None).unwrap().collect();
    let err = only_error(&items);
    assert!(
        err.message.contains("truncated") && err.message.contains("--allow-truncated"),
        "{err}"
    );
    assert_eq!(items.len(), 7);

    let mut reader = TraceReader::open(&path, None)
        .unwrap()
        .allow_truncated(true);
    let events: Vec<Event> = reader.by_ref().map(|e| e.unwrap()).collect();
    assert_eq!(events.len(), 6);
    assert_eq!(
        reader.truncated(),
        Some(Position::LineCol { line: 7, col: 1 })
    );
    assert!(reader.next().is_none());
}

#[test]
fn truncated_std_and_binary_end_cleanly_when_allowed() {
    for (file, pos, n) in [
        ("truncated.std", Position::LineCol { line: 3, col: 1 }, 7),
        ("truncated-record.data", Position::Byte(42), 9),
        ("missing-records.data", Position::Byte(42), 9),
    ] {
        let mut reader = TraceReader::open(&fixture("bad").join(file), None)
            .unwrap()
            .allow_truncated(true);
        let events: Vec<Event> = reader
            .by_ref()
            .map(|e| e.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(events.len(), n, "{file}: {events:?}");
        assert_eq!(reader.truncated(), Some(pos), "{file}");
    }
}

#[test]
fn truncation_is_only_for_the_last_unterminated_line() {
    let header = "{\"e\":\"header\",\"version\":1,\"pid\":1}\n";
    // A bad line followed by more lines is an error even when truncation is allowed.
    let text = format!("{header}{{\"e\":\"thread\",\"t\":\n{{\"e\":\"thread\",\"t\":2}}\n");
    let (items, reader) = read_bytes(text.as_bytes(), InputFormat::Json, true);
    assert!(!only_error(&items).message.contains("truncated"));
    assert_eq!(reader.truncated(), None);
    // A header cut short is not a trace at all.
    let (items, _) = read_bytes(b"{\"e\":\"header\",\"ver", InputFormat::Json, true);
    assert!(only_error(&items)
        .message
        .contains("truncated inside its header"));
    // An unterminated last line that parses is complete.
    let text = format!("{header}{{\"e\":\"thread\",\"t\":2}}");
    let (items, reader) = read_bytes(text.as_bytes(), InputFormat::Json, false);
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.is_ok()));
    assert_eq!(reader.truncated(), None);
}

/// An endless line of `a`s that is generated as it is read, counting the bytes handed out.
struct EndlessLine {
    prefix: Cursor<Vec<u8>>,
    left: u64,
    served: Arc<AtomicU64>,
}

impl Read for EndlessLine {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.prefix.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        let n = buf.len().min(self.left as usize);
        buf[..n].fill(b'a');
        self.left -= n as u64;
        self.served.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_huge_line_is_refused_without_reading_it_whole() {
    let served = Arc::new(AtomicU64::new(0));
    let input = EndlessLine {
        prefix: Cursor::new(b"{\"e\":\"header\",\"version\":1,\"pid\":1}\n".to_vec()),
        left: 80 << 20,
        served: served.clone(),
    };
    let reader = TraceReader::from_reader(
        "huge.jsonl",
        Box::new(BufReader::new(input)),
        InputFormat::Json,
    );
    let items: Vec<_> = reader.collect();
    let err = only_error(&items);
    assert_eq!(err.to_string(), format!("huge.jsonl:2:1: line longer than {MAX_LINE_LEN} bytes (not a trace line: is this the right file and format?)"));
    let served = served.load(Ordering::Relaxed);
    assert!(
        served <= MAX_LINE_LEN as u64 + (64 << 10),
        "read {served} bytes of an 80 MiB line"
    );

    // The same with a small limit, in the STD reader.
    let text = format!("T1|acq(L1)|1\nT1|rel(L{})|2\n", "9".repeat(100));
    let reader = TraceReader::with_max_line_len(
        "x.std",
        Box::new(Cursor::new(text.into_bytes())),
        InputFormat::Std,
        64,
    );
    let items: Vec<_> = reader.collect();
    assert_eq!(only_error(&items).to_string(), "x.std:2:1: line longer than 64 bytes (not a trace line: is this the right file and format?)");

    // And in the JSON reader, whose exact path reads lines without looking for their end first:
    // a line of the limit's length is read, one byte more is too long.
    let header = r#"{"e":"header","version":1,"pid":1}"#;
    let fits = r#"{"e":"acquire","t":1,"l":2,"m":"w","s":12}"#;
    let over = r#"{"e":"acquire","t":1,"l":2,"m":"w","s":123}"#;
    let text = format!("{header}\n{fits}\n{over}\n");
    let reader = TraceReader::with_max_line_len(
        "x.jsonl",
        Box::new(Cursor::new(text.into_bytes())),
        InputFormat::Json,
        fits.len(),
    );
    let items: Vec<_> = reader.collect();
    assert_eq!(items.len(), 3);
    assert!(matches!(items[1], Ok(Event::Acquire { s: Some(12), .. })));
    assert_eq!(only_error(&items).to_string(), format!("x.jsonl:3:1: line longer than {} bytes (not a trace line: is this the right file and format?)", fits.len()));
}

#[test]
fn unopenable_files_name_the_file_and_the_os_error() {
    let missing = fixture("no/such/trace.jsonl");
    let err = TraceReader::open(&missing, None).unwrap_err();
    assert_eq!(err.pos, None);
    assert!(
        err.to_string().starts_with(&missing.display().to_string()),
        "{err}"
    );
    assert!(err.message.contains("No such file"), "{err}");

    let err = TraceReader::open(&fixture("std"), None).unwrap_err();
    assert!(err.message.contains("is a directory"), "{err}");

    let dir = TempDir::new("perm");
    let path = dir.0.join("secret.jsonl");
    fs::write(&path, "{}\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything: the check only means something for other users.
    if fs::File::open(&path).is_err() {
        let err = TraceReader::open(&path, None).unwrap_err();
        assert!(err.message.contains("Permission denied"), "{err}");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
    }
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("lockcheck-read-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn inputs_expand_directories_recursively_and_sorted() {
    let dir = TempDir::new("expand");
    let root = &dir.0;
    fs::create_dir_all(root.join("b/deeper")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    for f in [
        "z.json",
        "a.std",
        "b/deeper/x.data",
        "b/y.jsonl",
        "notes.txt",
        "b/run.bin",
    ] {
        fs::write(root.join(f), "").unwrap();
    }
    let lone = root.join("notes.txt");
    let got = expand_inputs(&[lone.clone(), root.clone()]).unwrap();
    let want: Vec<PathBuf> = [
        "notes.txt",
        "a.std",
        "b/deeper/x.data",
        "b/y.jsonl",
        "z.json",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect();
    assert_eq!(got, want);

    let err = expand_inputs(&[root.join("empty")]).unwrap_err();
    assert!(
        err.to_string().contains("empty") && err.message.contains("no trace files"),
        "{err}"
    );
    let err = expand_inputs(&[root.join("missing.json")]).unwrap_err();
    assert!(
        err.file.ends_with("missing.json") && err.message.contains("No such file"),
        "{err}"
    );
    assert_eq!(expand_inputs(&[]).unwrap(), Vec::<PathBuf>::new());
}

fn tag(e: &Event) -> &'static str {
    // Exhaustive on purpose: a new event kind must be added to the schema and to this test.
    match e {
        Event::Header { .. } => "header",
        Event::Thread { .. } => "thread",
        Event::Class { .. } => "class",
        Event::Site { .. } => "site",
        Event::Lock { .. } => "lock",
        Event::Request { .. } => "request",
        Event::Acquire { .. } => "acquire",
        Event::Fail { .. } => "fail",
        Event::Release { .. } => "release",
        Event::Convert { .. } => "convert",
        Event::CondWait { .. } => "cond_wait",
        Event::Fork { .. } => "fork",
        Event::Join { .. } => "join",
        Event::Returned { .. } => "returned",
        Event::Drop { .. } => "drop",
        Event::Forget { .. } => "forget",
        Event::Written { .. } => "written",
        Event::ClassWritten { .. } => "class_written",
        Event::HeldAcrossAwait { .. } => "held_across_await",
        Event::Notify { .. } => "notify",
        Event::Forked { .. } => "forked",
        Event::LeftHeld { .. } => "left_held",
        Event::Stats { .. } => "stats",
    }
}

/// Every event kind, with optional fields both absent and present.
fn every_event() -> Vec<Event> {
    let frame = Frame {
        function: Some("f".into()),
        file: Some("src/a.rs".into()),
        line: Some(3),
    };
    vec![
        Event::Header {
            version: 1,
            pid: 1,
            program: String::new(),
            start_unix_ms: 0,
            hold_resolution_ns: 0,
        },
        Event::Header {
            version: 1,
            pid: u32::MAX,
            program: "p".into(),
            start_unix_ms: u64::MAX,
            hold_resolution_ns: u64::MAX,
        },
        Event::Thread { t: 1, name: None },
        Event::Thread {
            t: 2,
            name: Some("worker".into()),
        },
        Event::Class {
            c: 1,
            key: "k".into(),
            kind: LockKind::Mutex,
        },
        Event::Class {
            c: 2,
            key: "src/a.rs:1:2".into(),
            kind: LockKind::Rwlock,
        },
        Event::Class {
            c: 3,
            key: "s".into(),
            kind: LockKind::Semaphore,
        },
        Event::Class {
            c: 4,
            key: "cv".into(),
            kind: LockKind::Condvar,
        },
        Event::Class {
            c: 5,
            key: "u".into(),
            kind: LockKind::Unknown,
        },
        Event::Site {
            s: 1,
            loc: "src/a.rs:1:2".into(),
            frames: vec![],
        },
        Event::Site {
            s: 2,
            loc: "src/a.rs:1:2".into(),
            frames: vec![
                frame,
                Frame {
                    function: None,
                    file: None,
                    line: None,
                },
            ],
        },
        Event::Lock {
            l: 1,
            c: 1,
            permits: None,
        },
        Event::Lock {
            l: 2,
            c: 3,
            permits: Some(8),
        },
        Event::Request {
            t: 1,
            l: 1,
            m: Mode::Exclusive,
            s: None,
            n: 1,
            short: None,
        },
        Event::Request {
            t: 1,
            l: 1,
            m: Mode::Upgradable,
            s: Some(2),
            n: 1,
            short: None,
        },
        Event::Request {
            t: 1,
            l: 2,
            m: Mode::Permit,
            s: Some(2),
            n: 3,
            short: Some(Short::Alone),
        },
        Event::Request {
            t: 1,
            l: 2,
            m: Mode::Permit,
            s: Some(2),
            n: 1,
            short: Some(Short::Held),
        },
        Event::Forget { l: 2, n: 5 },
        Event::Written { l: 2 },
        Event::ClassWritten { c: 1 },
        Event::Acquire {
            t: 1,
            l: 1,
            m: Mode::Shared,
            how: How::Blocking,
            s: None,
            wait_ns: 0,
        },
        Event::Acquire {
            t: 1,
            l: 1,
            m: Mode::SharedRecursive,
            how: How::Timed,
            s: Some(1),
            wait_ns: 5,
        },
        Event::Acquire {
            t: 1,
            l: 2,
            m: Mode::Permit,
            how: How::Try,
            s: None,
            wait_ns: 0,
        },
        Event::Fail {
            t: 1,
            l: 1,
            m: Mode::Exclusive,
            how: How::Try,
            s: None,
            wait_ns: 0,
            n: 1,
        },
        Event::Fail {
            t: 1,
            l: 1,
            m: Mode::Exclusive,
            how: How::Try,
            s: Some(1),
            wait_ns: 0,
            n: 1_000_000,
        },
        Event::Fail {
            t: 1,
            l: 1,
            m: Mode::Exclusive,
            how: How::Timed,
            s: Some(1),
            wait_ns: 9,
            n: 1,
        },
        Event::Release {
            t: 1,
            l: 1,
            hold_ns: 0,
        },
        Event::Release {
            t: 1,
            l: 1,
            hold_ns: 10,
        },
        Event::Convert {
            t: 1,
            l: 1,
            m: Mode::Exclusive,
        },
        Event::CondWait {
            t: 1,
            cv: 4,
            l: 1,
            timed: false,
        },
        Event::CondWait {
            t: 1,
            cv: 4,
            l: 1,
            timed: true,
        },
        Event::Notify {
            t: 1,
            cv: 4,
            s: Some(1),
        },
        Event::Notify {
            t: 2,
            cv: 4,
            s: None,
        },
        Event::Forked { parent: 7, t: 1 },
        Event::LeftHeld {
            t: 1,
            l: 1,
            m: Mode::Exclusive,
            s: Some(1),
        },
        Event::LeftHeld {
            t: 2,
            l: 1,
            m: Mode::Shared,
            s: None,
        },
        Event::Fork { t: 1, child: 2 },
        Event::Join {
            t: 1,
            child: 2,
            scope: false,
        },
        Event::Join {
            t: 1,
            child: 2,
            scope: true,
        },
        Event::Returned { t: 2 },
        Event::Drop { l: 1 },
        Event::Stats {
            c: 1,
            stats: ClassStats::default(),
        },
        Event::Stats {
            c: 1,
            stats: ClassStats {
                acquisitions: 1,
                contended: 2,
                wait_total_ns: 3,
                wait_max_ns: 4,
                hold_total_ns: 5,
                hold_max_ns: 6,
            },
        },
    ]
}

fn schema() -> jsonschema::Validator {
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/trace-format.schema.json"),
    )
    .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

#[test]
fn every_serialized_event_matches_the_schema() {
    let validator = schema();
    let events = every_event();
    let tags: std::collections::BTreeSet<&str> = events.iter().map(tag).collect();
    assert_eq!(tags.len(), 22, "every_event must hold every kind");
    for event in &events {
        let mut line = Vec::new();
        event.write_line(&mut line);
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{}: {errors:?}",
            String::from_utf8_lossy(&line)
        );
        // And the reader reads back what was written.
        assert_eq!(&serde_json::from_slice::<Event>(&line).unwrap(), event);
    }
}

#[test]
fn the_schema_accepts_the_json_fixtures_and_rejects_bad_lines() {
    let validator = schema();
    for file in ["json/abba.jsonl", "json/all-events.jsonl"] {
        for line in fs::read_to_string(fixture(file))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(validator.is_valid(&value), "{file}: {line}");
        }
    }
    for line in [
        r#"{"e":"teleport","t":1}"#,
        r#"{"e":"acquire","t":"one","l":1,"m":"w"}"#,
        r#"{"e":"acquire","t":1,"l":1,"m":"exclusive"}"#,
        r#"{"e":"acquire","t":1,"m":"w"}"#,
        r#"{"e":"header","version":2,"pid":1}"#,
        r#"{"e":"fail","t":1,"l":1,"m":"w"}"#,
        r#"{"e":"release","t":-1,"l":1}"#,
        r#"{"t":1}"#,
    ] {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(!validator.is_valid(&value), "{line}");
        // The reader refuses them too.
        let text = format!("{{\"e\":\"header\",\"version\":1,\"pid\":1}}\n{line}\n");
        let (items, _) = read_bytes(text.as_bytes(), InputFormat::Json, false);
        assert!(items.iter().any(|i| i.is_err()), "{line}");
    }
}

#[test]
fn the_documented_example_reads_and_matches_the_schema() {
    let doc = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/trace-format.md"),
    )
    .unwrap();
    let start = doc.find("```json\n").expect("an example") + "```json\n".len();
    let example = &doc[start..start + doc[start..].find("```").unwrap()];
    let (items, _) = read_bytes(example.as_bytes(), InputFormat::Json, false);
    assert!(
        items.len() >= 10 && items.iter().all(|i| i.is_ok()),
        "{items:?}"
    );
    let validator = schema();
    for line in example.lines() {
        assert!(
            validator.is_valid(&serde_json::from_str(line).unwrap()),
            "{line}"
        );
    }
}

mod never_panic {
    use super::*;
    use proptest::prelude::*;

    fn check(bytes: &[u8]) {
        for format in [InputFormat::Json, InputFormat::Std, InputFormat::RapidBin] {
            for allow in [false, true] {
                let (items, reader) = read_bytes(bytes, format, allow);
                let errors = items.iter().filter(|i| i.is_err()).count();
                assert!(errors <= 1);
                if errors == 1 {
                    assert!(items.last().unwrap().is_err());
                }
                if reader.truncated().is_some() {
                    assert!(allow && errors == 0);
                }
            }
        }
    }

    /// Lines that look like traces, to get past the first checks.
    fn almost_lines() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just("{\"e\":\"header\",\"version\":1,\"pid\":1}\n".to_owned()),
            Just("{\"e\":\"acquire\",\"t\":1,\"l\":2,\"m\":\"w\"}\n".to_owned()),
            Just("T1|acq(L3)|42\n".to_owned()),
            Just("9|fork(T2)|\n".to_owned()),
            "[a-zT0-9|(){}\":,\n ]{0,30}",
        ];
        proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat().into_bytes())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check(&bytes);
        }

        #[test]
        fn almost_traces(mut bytes in almost_lines(), cut in 0usize..400) {
            check(&bytes);
            bytes.truncate(cut);
            check(&bytes);
        }

        #[test]
        fn binary_after_a_plausible_header(
            counts in (0i16..4, 0i32..4, 0i64..12),
            words in proptest::collection::vec(any::<u64>(), 0..12),
            tail in 0usize..8,
        ) {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&counts.0.to_be_bytes());
            bytes.extend_from_slice(&counts.1.to_be_bytes());
            bytes.extend_from_slice(&0i32.to_be_bytes());
            bytes.extend_from_slice(&counts.2.to_be_bytes());
            for w in &words {
                // Mostly small fields, so that some records are valid.
                bytes.extend_from_slice(&(w & 0x0000_0000_000f_ffff | (w & 0x7 << 48)).to_be_bytes());
            }
            bytes.extend(std::iter::repeat_n(0u8, tail));
            check(&bytes);
        }
    }
}

/// The fast paths of the readers against the full parsers they stand in for: wherever a fast path
/// accepts its input, the full parser gives the same event (and so the same stream, errors and
/// all, since everything the fast path declines goes to the full parser).
mod fast_paths {
    use super::*;
    use proptest::prelude::*;

    /// JSON: the fast paths' event, when they have one, is serde's.
    fn check_json(line: &str) {
        let full: Result<Event, _> = serde_json::from_str(line);
        if let Some(fast) = json::fast::event(line.as_bytes()) {
            assert_eq!(full.as_ref().ok(), Some(&fast), "{line}: {full:?}");
        }
        if let Some(exact) = json::exact::event(line.as_bytes()) {
            assert_eq!(full.as_ref().ok(), Some(&exact), "exact: {line}: {full:?}");
        }
    }

    /// A lock-operation event with field values at the edges of the exact path: numbers of every
    /// length from 1 to 20 digits, and the ends of the `u32` fields.
    fn lock_operation() -> impl Strategy<Value = Event> {
        let n = || {
            prop_oneof![
                Just(0u64),
                Just(9),
                Just(10),
                Just(999_999_999_999_999_999),
                Just(9_999_999_999_999_999_999),
                Just(10_000_000_000_000_000_000),
                Just(u64::MAX),
                0u64..1000,
                // Every count of digits, 1 to 20.
                (0u32..20, any::<u64>()).prop_map(|(d, x)| x % 10u64.pow(d).max(10)),
                any::<u64>(),
            ]
        };
        let n32 = || prop_oneof![Just(0u32), Just(1), Just(2), Just(u32::MAX), any::<u32>()];
        let site = || proptest::option::of(n32());
        let mode = || {
            prop_oneof![
                Just(Mode::Exclusive),
                Just(Mode::Shared),
                Just(Mode::SharedRecursive),
                Just(Mode::Upgradable),
                Just(Mode::Permit),
            ]
        };
        let how = || prop_oneof![Just(How::Blocking), Just(How::Try), Just(How::Timed)];
        prop_oneof![
            (n(), n(), mode(), how(), site(), n()).prop_map(|(t, l, m, how, s, wait_ns)| {
                Event::Acquire {
                    t,
                    l,
                    m,
                    how,
                    s,
                    wait_ns,
                }
            }),
            (n(), n(), n()).prop_map(|(t, l, hold_ns)| Event::Release { t, l, hold_ns }),
            (n(), n(), mode(), site(), n32()).prop_map(|(t, l, m, s, n)| Event::Request {
                t,
                l,
                m,
                s,
                n,
                short: None,
            }),
            (n(), n(), mode(), how(), site(), n(), n32()).prop_map(
                |(t, l, m, how, s, wait_ns, n)| Event::Fail {
                    t,
                    l,
                    m,
                    how,
                    s,
                    wait_ns,
                    n,
                }
            ),
            (n(), n32(), proptest::option::of(n())).prop_map(|(l, c, permits)| Event::Lock {
                l,
                c,
                permits
            }),
            (n(), n(), mode()).prop_map(|(t, l, m)| Event::Convert { t, l, m }),
            // (A timed wait, a notify, a forked child's events, a scope's join and `returned`
            // are rare: the full parser's.)
            (n(), n(), n()).prop_map(|(t, cv, l)| Event::CondWait {
                t,
                cv,
                l,
                timed: false
            }),
            (n(), n()).prop_map(|(t, child)| Event::Fork { t, child }),
            (n(), n()).prop_map(|(t, child)| Event::Join {
                t,
                child,
                scope: false
            }),
            n().prop_map(|l| Event::Drop { l }),
            (n(), n()).prop_map(|(l, n)| Event::Forget { l, n }),
            n().prop_map(|l| Event::Written { l }),
            any::<u32>().prop_map(|c| Event::ClassWritten { c }),
        ]
    }

    /// The numbers of a JSON line, as written.
    fn numbers(line: &str) -> impl Iterator<Item = &str> {
        line.split(|c: char| !c.is_ascii_digit())
            .filter(|d| !d.is_empty())
    }

    #[test]
    fn json_lines_of_every_lock_operation_take_the_fast_path() {
        for e in every_event() {
            let mut line = Vec::new();
            e.write_line(&mut line);
            let line = std::str::from_utf8(&line).unwrap().trim_end();
            let fast = json::fast::event(line.as_bytes());
            // (A timed wait, a notify, a forked child's events, a scope's join, `returned`, a
            // semaphore request short of permits are rare: the full parser's.)
            let numeric = !matches!(
                e,
                Event::Request { short: Some(_), .. }
                    | Event::Header { .. }
                    | Event::Thread { .. }
                    | Event::Class { .. }
                    | Event::Site { .. }
                    | Event::Stats { .. }
                    | Event::Notify { .. }
                    | Event::Forked { .. }
                    | Event::LeftHeld { .. }
                    | Event::Returned { .. }
                    | Event::Join { scope: true, .. }
                    | Event::CondWait { timed: true, .. }
            );
            assert_eq!(fast.is_some(), numeric, "{line}");
            // The recorder's own lines take the exact path too.
            let exact = json::exact::event(line.as_bytes());
            assert_eq!(exact.is_some(), numeric, "exact: {line}");
            check_json(line);
        }
    }

    #[test]
    fn json_fast_path_declines_what_serde_rejects_or_reads_otherwise() {
        for line in [
            r#"{"e":"acquire","t":1,"l":2,"m":"w"}"#,
            r#" { "l" : 2 , "m":"r", "e" :"acquire","t":1 } "#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","t":1}"#,
            r#"{"e":"acquire","t":1,"l":2}"#,
            r#"{"e":"acquire","t":01,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":1.0,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":1e2,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":-1,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":18446744073709551616,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":18446744073709551615,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","s":4294967296}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","s":4294967295}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","s":null}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"x"}"#,
            r#"{"e":"acq\u0075ire","t":1,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w"} x"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w"},"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w",}"#,
            r#"{"e":"release","t":1,"l":2,"s":99999999999}"#,
            r#"{"e":"release","t":1,"l":2,"m":"w"}"#,
            r#"{"e":"fail","t":1,"l":2,"m":"w"}"#,
            r#"{"e":"fail","t":1,"l":2,"m":"w","how":"try"}"#,
            r#"{"e":"lock","l":1,"c":4294967296}"#,
            r#"{"e":"lock","l":1,"c":3,"permits":0}"#,
            r#"{"e":"drop","l":1,"unknown":1}"#,
            r#"{"e":"header","version":1,"pid":1}"#,
            r#"{}"#,
            r#"{"t":1}"#,
            "",
            "{",
        ] {
            check_json(line);
        }
        // At the edges of the exact path: what it takes, and what it leaves to the others.
        let exact_takes = [
            r#"{"e":"acquire","t":0,"l":9,"m":"rr","s":0}"#,
            r#"{"e":"acquire","t":9999999999999999999,"l":2,"m":"p","how":"blocking"}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"u","how":"timed","wait_ns":0}"#,
            r#"{"e":"request","t":1,"l":2,"m":"r","s":4294967295,"n":1}"#,
            r#"{"e":"release","t":1,"l":2,"hold_ns":0}"#,
            r#"{"e":"lock","l":1,"c":4294967295,"permits":0}"#,
            r#"{"e":"fail","t":1,"l":2,"m":"w","how":"try"}"#,
            r#"{"e":"cond_wait","t":1,"cv":2,"l":3}"#,
        ];
        let exact_leaves = [
            r#"{"e":"acquire","t":10000000000000000000,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":18446744073709551615,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":18446744073709551616,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":01,"l":2,"m":"w"}"#,
            r#"{"e":"acquire","t":1,"l":00,"m":"w"}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","s":4294967296}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","s":1.0}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","s":1e0}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"rw"}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","how":"never"}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","s":3,"how":"try"}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","wait_ns":3,"s":3}"#,
            r#"{"e":"acquire","l":2,"t":1,"m":"w"}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w"} "#,
            "{\"e\":\"acquire\",\"t\":1,\"l\":2,\"m\":\"w\"}\r",
            r#"{"e":"acquire","t":1,"l":2,"m":"w"}}"#,
            r#"{"e":"acquire","t":1,"l":2,"m":"w","x":1}"#,
            r#"{"e":"acquire","t":1,"l":2}"#,
            r#" {"e":"acquire","t":1,"l":2,"m":"w"}"#,
            r#"{"e": "acquire","t":1,"l":2,"m":"w"}"#,
            r#"{"e":"release","t":1,"l":2,"hold_ns":1,"hold_ns":1}"#,
            r#"{"e":"release","t":1,"l":2,"s":1}"#,
            r#"{"e":"request","t":1,"l":2,"m":"w","n":4294967296}"#,
            r#"{"e":"lock","l":1,"c":4294967296}"#,
            r#"{"e":"fail","t":1,"l":2,"m":"w"}"#,
            r#"{"e":"acquirer","t":1,"l":2,"m":"w"}"#,
            r#"{"e":"header","version":1,"pid":1}"#,
            r#"{"e":"acquire""#,
            r#"{"e":""#,
            "",
        ];
        for line in exact_takes {
            check_json(line);
            assert!(json::exact::event(line.as_bytes()).is_some(), "{line}");
        }
        for line in exact_leaves {
            check_json(line);
            assert!(json::exact::event(line.as_bytes()).is_none(), "{line}");
        }
        // Twenty digits that fit a u64 are still read, by the field-order-free fast path.
        assert!(json::fast::event(exact_leaves[1].as_bytes()).is_some());
        assert!(json::fast::event(br#"{"e":"acquire","t":1,"l":2,"m":"w","t":1}"#).is_none());
        assert!(json::fast::event(br#"{"e":"acquire","t":1,"l":2,"m":"w","s":null}"#).is_none());
    }

    fn json_piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(r#""e":"acquire""#.to_owned()),
            Just(r#""e":"release""#.to_owned()),
            Just(r#""e":"request""#.to_owned()),
            Just(r#""e":"fail""#.to_owned()),
            Just(r#""e":"lock""#.to_owned()),
            Just(r#""e":"fork""#.to_owned()),
            Just(r#""e":"drop""#.to_owned()),
            Just(r#""e":"cond_wait""#.to_owned()),
            Just(r#""m":"w""#.to_owned()),
            Just(r#""m":"rr""#.to_owned()),
            Just(r#""how":"try""#.to_owned()),
            Just(r#""how":"blocking""#.to_owned()),
            (
                prop_oneof![
                    Just("t"),
                    Just("l"),
                    Just("s"),
                    Just("c"),
                    Just("cv"),
                    Just("child"),
                    Just("permits"),
                    Just("wait_ns"),
                    Just("hold_ns")
                ],
                prop_oneof![
                    any::<u64>().prop_map(|n| n.to_string()),
                    (0u64..10).prop_map(|n| n.to_string()),
                    Just("0".to_owned()),
                    Just("00".to_owned()),
                    Just("null".to_owned()),
                    Just("1.5".to_owned()),
                    Just("\"1\"".to_owned()),
                    Just("4294967296".to_owned()),
                ]
            )
                .prop_map(|(k, v)| format!("\"{k}\":{v}")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn json_fast_path_agrees_with_serde(
            pieces in proptest::collection::vec(json_piece(), 0..7),
            blanks in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("\t")], 8),
        ) {
            let mut line = format!("{}{{", blanks[0]);
            for (i, p) in pieces.iter().enumerate() {
                if i > 0 {
                    line.push_str(blanks[i % 8]);
                    line.push(',');
                }
                line.push_str(p);
            }
            line.push('}');
            line.push_str(blanks[7]);
            check_json(&line);
        }

        /// The recorder's lines of lock operations take the exact path, unless a number has more
        /// than 19 digits; cut or with a byte changed, they are read as serde reads them.
        #[test]
        fn json_exact_path_takes_the_recorders_lines(
            e in lock_operation(),
            cut in 0usize..80,
            flip in 0usize..80,
            byte in any::<u8>(),
        ) {
            let mut line = Vec::new();
            e.write_line(&mut line);
            line.pop();
            let text = std::str::from_utf8(&line).unwrap();
            let short = numbers(text).all(|d| d.len() <= 19);
            prop_assert_eq!(json::exact::event(&line), short.then(|| e.clone()), "{}", text);
            check_json(text);
            let flip = flip % line.len();
            line[flip] = byte;
            line.truncate(line.len() - cut.min(line.len()));
            if let Ok(text) = std::str::from_utf8(&line) {
                check_json(text);
            } else {
                prop_assert!(json::exact::event(&line).is_none());
            }
        }

        #[test]
        fn json_fast_path_agrees_with_serde_on_cut_and_mutated_lines(
            cut in 0usize..60,
            flip in 0usize..60,
            byte in any::<u8>(),
        ) {
            let mut line = br#"{"e":"acquire","t":12,"l":345,"m":"w","how":"try","s":6,"wait_ns":7}"#.to_vec();
            let flip = flip % line.len();
            line[flip] = byte;
            line.truncate(line.len() - cut.min(line.len()));
            if let Ok(text) = std::str::from_utf8(&line) {
                check_json(text);
            } else {
                prop_assert!(json::fast::event(&line).is_none());
            }
        }

        #[test]
        fn lct_fast_path_agrees_with_the_reference_decoder(
            bytes in proptest::collection::vec(any::<u8>(), 0..24),
            event in 0usize..22,
            cut in 0usize..24,
        ) {
            // Arbitrary bytes, and real records cut short.
            if let Some((e, n)) = lct::decode_numeric_for_tests(&bytes) {
                let full = lockcheck_core::lct::decode(&bytes);
                prop_assert_eq!(full, Ok(Some((e, n))));
            }
            let all = every_event();
            let mut rec = Vec::new();
            lockcheck_core::lct::encode(&all[event % all.len()], &mut rec);
            rec.truncate(rec.len() - cut.min(rec.len()));
            if let Some((e, n)) = lct::decode_numeric_for_tests(&rec) {
                prop_assert_eq!(lockcheck_core::lct::decode(&rec), Ok(Some((e, n))));
            }
        }
    }

    #[test]
    fn lct_records_of_every_lock_operation_take_the_fast_path() {
        for e in every_event() {
            let mut rec = Vec::new();
            lockcheck_core::lct::encode(&e, &mut rec);
            if let Some((fast, n)) = lct::decode_numeric_for_tests(&rec) {
                assert_eq!((fast, n), (e, rec.len()));
            } else {
                assert!(
                    matches!(
                        e,
                        Event::Header { .. }
                            | Event::Thread { .. }
                            | Event::Class { .. }
                            | Event::Site { .. }
                            | Event::Stats { .. }
                            | Event::Notify { .. }
                            | Event::Forked { .. }
                            | Event::LeftHeld { .. }
                            | Event::Returned { .. }
                            | Event::Join { scope: true, .. }
                            | Event::CondWait { timed: true, .. }
                    ),
                    "{e:?}"
                );
            }
        }
    }

    /// STD: a trace read through the fast path (plain lines) and the same trace with blanks that
    /// send every line to the full parser give the same events.
    #[test]
    fn std_fast_and_full_parsers_give_the_same_events() {
        let plain = "T1|acq(L1)|10\nT1|req(L2)|11\nT1|acq(L2)|11\nt1|rel(L2)\n1|rel(L1)|12\nT1|fork(T2)|3\nT2|acq(lock_b)|4\nT2|rel(lock_b)|5\nmain|acq(L1)|6\nmain|rel(L1)|7\nT1|join(2)|8\nT1|begin()|9\nT1|end\nT1|r(V1)|1\nT1|w(V1)|1\nT1|branch|1\nT99999999999999999999999|acq(L1)|1\nT007|acq(L07)|010\nT3|acq(L262143)|32767\nT3|acq(L262144)|32768\nT3|rel(L262144)|x\nT1234567890|acq(L0)|0\nT3|req(L1234567)\nT3|rel(L262143)|5\nT4|acq(7)|1\nT4|acq(07)|2\nT4|acq(L7)|2\nT4|rel(7)\nT4|acq(262143)|5\nT4|acq(262144)|5\nT4|acq(0)|5\nT4|r(4294967298)|59\nT4|w(1)\nT4|r(1)|x\nT5|w(12)|3\nT6|r(V1)|3\nT4|req(3)|9\n";
        let blanked: String = plain
            .lines()
            .map(|l| format!(" {} \n", l.replace('|', " | ")))
            .collect();
        let read = |text: &str| -> Vec<Event> {
            TraceReader::from_reader(
                "x.std",
                Box::new(Cursor::new(text.as_bytes().to_vec())),
                InputFormat::Std,
            )
            .map(|e| e.unwrap())
            .collect()
        };
        let fast = read(plain);
        assert_eq!(fast, read(&blanked));
        assert!(fast.len() > 20);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// Any line the fast path parses, the full parser parses the same way.
        #[test]
        fn std_fast_path_agrees_with_the_full_parser(
            pieces in proptest::collection::vec(prop_oneof![
                Just("T1"), Just("t2"), Just("7"), Just("|"), Just("acq"), Just("rel"), Just("req"),
                Just("fork"), Just("begin"), Just("("), Just(")"), Just("L3"), Just(" "), Just("42"),
                Just("é"), Just("\t"), Just("x"),
            ], 0..10),
        ) {
            let line = pieces.concat();
            if let Some(fast) = std_text::parse_plain_for_tests(line.as_bytes()) {
                let full = std_text::parse_for_tests(&line);
                prop_assert_eq!(Some(fast), full, "{}", line);
            }
        }
    }
}

/// A reader that hands out a few bytes at a time (1 to 13, varying), so that lines and records
/// are cut by the reads at every possible place.
struct Trickle {
    data: Cursor<Vec<u8>>,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 13 + 1;
        let n = buf.len().min(self.step);
        self.data.read(&mut buf[..n])
    }
}

/// Traces larger than one read buffer in every format, with the offset of a place inside a
/// record past the middle (where a cut leaves a truncated last record).
fn large_traces() -> Vec<(InputFormat, Vec<u8>, usize)> {
    let events: Vec<Event> = crate::synth::Synth::new(crate::synth::SynthConfig {
        events: 45_000,
        ..Default::default()
    })
    .collect();
    let mut json = Vec::new();
    for e in &events {
        e.write_line(&mut json);
    }
    let mut lct = lockcheck_core::lct::MAGIC.to_vec();
    let mut lct_mid = 0;
    for e in &events {
        if lct_mid == 0 && lct.len() > 200_000 {
            lct_mid = lct.len() + 1;
        }
        lockcheck_core::lct::encode(e, &mut lct);
    }
    let mut std = String::new();
    for i in 0..40_000u32 {
        std.push_str(&format!(
            "T{}|acq(L{})|{}\nT{}|rel(L{})\n",
            i % 7,
            i % 13,
            i % 17,
            i % 7,
            i % 13
        ));
    }
    let n = 60_000u64;
    let mut rapid = Vec::new();
    rapid.extend_from_slice(&8i16.to_be_bytes());
    rapid.extend_from_slice(&16i32.to_be_bytes());
    rapid.extend_from_slice(&0i32.to_be_bytes());
    rapid.extend_from_slice(&(n as i64).to_be_bytes());
    for i in 0..n {
        let (t, lock, loc) = (i % 8, (i / 2) % 16, i % 100);
        let op = i % 2; // acq, rel
        rapid.extend_from_slice(&(t | (op << 10) | (lock << 14) | (loc << 48)).to_be_bytes());
    }
    let line_mid =
        |b: &[u8]| b[b.len() / 2..].iter().position(|&c| c == b'\n').unwrap() + b.len() / 2 + 3;
    vec![
        (InputFormat::Json, json.clone(), line_mid(&json)),
        (
            InputFormat::Std,
            std.clone().into_bytes(),
            line_mid(std.as_bytes()),
        ),
        (InputFormat::RapidBin, rapid.clone(), rapid.len() / 2 + 3),
        (InputFormat::Lct, lct, lct_mid),
    ]
}

#[test]
fn records_cut_by_the_reads_decode_as_whole_ones_and_cuts_end_cleanly() {
    for (format, bytes, mid) in large_traces() {
        let (items, _) = read_bytes(&bytes, format, false);
        let whole: Vec<Event> = items
            .into_iter()
            .map(|e| e.unwrap_or_else(|e| panic!("{format:?}: {e}")))
            .collect();
        assert!(
            bytes.len() > 300_000 && whole.len() > 20_000,
            "{format:?}: {} bytes, {} events",
            bytes.len(),
            whole.len()
        );
        // Read a few bytes at a time: the same events.
        let trickle = Trickle {
            data: Cursor::new(bytes.clone()),
            step: 0,
        };
        let trickled: Vec<Event> = TraceReader::from_reader(
            "mem",
            Box::new(BufReader::with_capacity(5, trickle)),
            format,
        )
        .map(|e| e.unwrap_or_else(|e| panic!("{format:?}: {e}")))
        .collect();
        if let Some(i) = (0..whole.len().min(trickled.len())).find(|&i| whole[i] != trickled[i]) {
            panic!(
                "{format:?}: trickled reads differ at event {i}: {:?} vs {:?}",
                &whole[i.saturating_sub(2)..(i + 2).min(whole.len())],
                &trickled[i.saturating_sub(2)..(i + 2).min(trickled.len())]
            );
        }
        assert_eq!(trickled.len(), whole.len(), "{format:?}");
        // Cut inside a record past the middle, and two bytes before the end (a line without
        // its newline alone would be complete): the complete events before the cut, then a
        // clean end saying where (an error without the flag).
        for cut in [mid, bytes.len() - 2] {
            let (items, reader) = read_bytes(&bytes[..cut], format, true);
            let got: Vec<Event> = items.into_iter().map(|e| e.unwrap()).collect();
            assert!(reader.truncated().is_some(), "{format:?} cut at {cut}");
            assert!(got.len() > 10_000, "{format:?} cut at {cut}: {}", got.len());
            assert!(
                got[..] == whole[..got.len()],
                "{format:?} cut at {cut}: not a prefix"
            );
            let (strict, _) = read_bytes(&bytes[..cut], format, false);
            let err = only_error(&strict);
            assert!(
                err.message.contains("--allow-truncated"),
                "{format:?}: {err}"
            );
            assert_eq!(strict.len() - 1, got.len(), "{format:?} cut at {cut}");
        }
    }
}

/// Everything [`TraceReader::read_batch`] gives, as the iterator's items: the events, then the
/// error that ends the stream, if any. One event is taken by the iterator first, so that
/// batches follow a partly used one.
fn read_in_batches(
    bytes: &[u8],
    format: InputFormat,
    allow_truncated: bool,
    max: usize,
) -> (Vec<Result<Event, ReadError>>, Option<Position>) {
    let mut reader = TraceReader::from_reader("mem", Box::new(Cursor::new(bytes.to_vec())), format)
        .allow_truncated(allow_truncated);
    let mut items: Vec<Result<Event, ReadError>> = reader.next().into_iter().collect();
    if items.iter().any(|i| i.is_err()) {
        return (items, reader.truncated());
    }
    let mut calls = 0;
    loop {
        calls += 1;
        assert!(calls <= bytes.len() + 2, "read_batch does not end");
        let mut batch = Vec::new();
        let r = reader.read_batch(&mut batch, max);
        let full = batch.len() >= max;
        items.extend(batch.into_iter().map(Ok));
        match r {
            Ok(true) => assert!(full, "{format:?}: a batch cut short without an end"),
            Ok(false) => break,
            Err(e) => {
                items.push(Err(e));
                break;
            }
        }
    }
    (items, reader.truncated())
}

#[test]
fn batches_give_what_the_iterator_gives_errors_and_truncation_included() {
    for (format, bytes, mid) in large_traces() {
        let mut corrupt = bytes.clone();
        // A bad byte past the middle: an error there (or, in JSON and STD, a line the parser
        // rejects), after every event before it.
        corrupt[mid] = if format == InputFormat::RapidBin {
            0xff
        } else {
            b'('
        };
        let inputs = [
            (&bytes[..], false),
            (&bytes[..mid], true),
            (&bytes[..mid], false),
            (&corrupt[..], false),
        ];
        for (input, allow) in inputs {
            let (want, reader) = read_bytes(input, format, allow);
            for max in [1, 7, 1000, 8192] {
                let (got, truncated) = read_in_batches(input, format, allow, max);
                assert_eq!(got, want, "{format:?}, {} bytes, max {max}", input.len());
                assert_eq!(truncated, reader.truncated(), "{format:?}, max {max}");
            }
        }
    }
}

/// An endless input read as RAPID binary (`/dev/zero`: a header of zeros declares no event,
/// then zeros forever) is refused after a bounded read, instead of being read forever to count
/// its excess bytes. Run on a thread of its own with a deadline, so that a regression fails
/// instead of hanging.
#[test]
fn rapidbin_endless_excess_is_refused_after_a_bounded_read() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let input = std::io::BufReader::new(std::io::repeat(0));
        let reader = TraceReader::from_reader("zero", Box::new(input), InputFormat::RapidBin);
        let err = reader.filter_map(Result::err).next();
        let _ = tx.send(err.map(|e| e.to_string()));
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("an endless RAPID binary input was read for a minute without an answer")
        .expect("an error");
    assert_eq!(
        err,
        "zero: byte 18: more than 1048576 bytes after the 0 events that the header declares"
    );
}

/// The format is told by the content whatever the name (a JSON Lines recording killed before its
/// conversion is `.lct` under a `.jsonl` name); the extension decides only when the content
/// shows none of the formats.
#[test]
fn the_format_is_told_by_the_content_whatever_the_name() {
    use InputFormat::*;
    let rapid = [0u8, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0];
    let cases: [(&str, &[u8], InputFormat); 13] = [
        ("run.jsonl", b"LCT\x05\x12", Lct),
        ("run.std", b"LCT\x02", Lct),
        ("run", b"LCT\x05", Lct),
        ("run.lct", b"{\"e\":\"header\"}\n", Json),
        ("run.std", b"  {\"e\":\"header\"}\n", Json),
        ("run.jsonl", b"T0|acq(L0)|1\nT0|rel(L0)|2\n", Std),
        ("run.lct", b"\nT1|acq(L3)\n", Std),
        ("run.jsonl", &rapid, RapidBin),
        // RAPID's binary counts may look like anything: its extension is trusted.
        ("run.data", b"{abc", RapidBin),
        // Binary junk under a text format's name: that reader says what is wrong.
        ("run.std", &rapid, Std),
        // Nothing recognized: the extension.
        ("run.std", b"garbage", Std),
        ("run.lct", b"", Lct),
        ("run.jsonl", b"garbage", Json),
    ];
    for (name, head, want) in cases {
        assert_eq!(
            InputFormat::detect(Path::new(name), head),
            want,
            "{name}: {head:?}"
        );
    }
}

/// How a trace spells its names: thread, lock and location by number, and the line end.
struct Spelling {
    what: &'static str,
    thread: fn(u64) -> String,
    lock: fn(u64) -> String,
    /// `None`: the lines have no location.
    loc: Option<fn(u64) -> String>,
    end: &'static str,
}

/// The spellings other generators write: each is read as the canonical `T<n>|acq(L<n>)|<n>`
/// with the names as written (`t1` is thread `T1`, as the format says; `l3` is a lock of its own).
fn spellings() -> Vec<Spelling> {
    fn t(n: u64) -> String {
        format!("T{n}")
    }
    fn l(n: u64) -> String {
        format!("L{n}")
    }
    fn num(n: u64) -> String {
        n.to_string()
    }
    vec![
        Spelling {
            what: "canonical",
            thread: t,
            lock: l,
            loc: Some(num),
            end: "\n",
        },
        Spelling {
            what: "crlf",
            thread: t,
            lock: l,
            loc: Some(num),
            end: "\r\n",
        },
        Spelling {
            what: "no location",
            thread: t,
            lock: l,
            loc: None,
            end: "\n",
        },
        Spelling {
            what: "bare",
            thread: t,
            lock: num,
            loc: Some(num),
            end: "\n",
        },
        Spelling {
            what: "lowercase",
            thread: |n| format!("t{n}"),
            lock: |n| format!("l{n}"),
            loc: Some(num),
            end: "\n",
        },
        Spelling {
            what: "lock_",
            thread: t,
            lock: |n| format!("lock_{n}"),
            loc: Some(num),
            end: "\n",
        },
        Spelling {
            what: "m",
            thread: t,
            lock: |n| format!("m{n}"),
            loc: Some(num),
            end: "\n",
        },
        Spelling {
            what: "java",
            thread: |n| format!("Thread-{n}"),
            lock: |n| format!("0x{:x}", 0x0007_f3a2_c000_u64 + n * 0x40),
            loc: Some(|n| format!("Foo{}.java:{}", n % 7, 100 + n)),
            end: "\n",
        },
        Spelling {
            what: "rust",
            thread: |n| format!("worker-thread-number-{n}"),
            lock: |n| {
                format!(
                    "std::sync::Mutex<alloc::vec::Vec<u8>>@0x{:x}",
                    0x5600_0000 + n * 8
                )
            },
            loc: Some(|n| format!("src/a{}.rs:{}:5", n % 7, 10 + n)),
            end: "\r\n",
        },
    ]
}

/// A trace of nested acquisitions in `spelling`: 9 threads forked by thread 0 and joined, 60
/// locks, each thread nesting 1 to 4 of them in one order with a few inversions.
fn spelled_trace(s: &Spelling) -> String {
    let mut out = String::new();
    let mut line = |t: u64, op: &str, arg: String, loc: u64| {
        out.push_str(&format!("{}|{op}({arg})", (s.thread)(t)));
        if let Some(f) = s.loc {
            out.push('|');
            out.push_str(&f(loc));
        }
        out.push_str(s.end);
    };
    for c in 1..=9 {
        line(0, "fork", (s.thread)(c), 0);
    }
    let mut x = 12345u64;
    for i in 0..2000u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let t = 1 + (x >> 33) % 9;
        let depth = 1 + (x >> 40) % 4;
        let mut held: Vec<u64> = (0..depth).map(|k| (x >> (7 * k + 3)) % 60).collect();
        held.sort_unstable();
        held.dedup();
        if i % 97 == 0 {
            held.reverse();
        }
        for &l in &held {
            line(
                t,
                if i % 5 == 0 { "req" } else { "acq" },
                (s.lock)(l),
                100 + l,
            );
            if i % 5 == 0 {
                line(t, "acq", (s.lock)(l), 100 + l);
            }
        }
        for &l in held.iter().rev() {
            line(t, "rel", (s.lock)(l), 200 + l);
        }
    }
    for c in 1..=9 {
        line(0, "join", (s.thread)(c), 0);
    }
    out
}

/// Every spelling of a trace reads as its canonical spelling, event for event, with the
/// names as written: through the in-buffer paths, and with lines cut by the reads at every place.
#[test]
fn std_spellings_read_as_the_canonical_one_with_their_names() {
    let all = spellings();
    let canonical = &all[0];
    let read = |text: &str, trickle: bool| -> Vec<Event> {
        let input: Box<dyn std::io::BufRead + Send> = if trickle {
            Box::new(std::io::BufReader::with_capacity(
                64,
                Trickle {
                    data: Cursor::new(text.as_bytes().to_vec()),
                    step: 0,
                },
            ))
        } else {
            Box::new(Cursor::new(text.as_bytes().to_vec()))
        };
        TraceReader::from_reader("x.std", input, InputFormat::Std)
            .map(|e| e.unwrap())
            .collect()
    };
    let base = read(&spelled_trace(canonical), false);
    assert!(base.len() > 10_000);
    // The canonical names as numbers, to spell them again.
    let number = |name: &str, prefix: &str| -> u64 {
        name.strip_prefix(prefix)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}"))
    };
    for s in &all {
        let mut want = Vec::new();
        for e in &base {
            let mut e = e.clone();
            match &mut e {
                Event::Thread {
                    name: Some(name), ..
                } => {
                    // `t1`, `T1` and `1` are one thread, named `T1`.
                    let spelled = (s.thread)(number(name, "T"));
                    if !spelled.starts_with('t') {
                        *name = spelled;
                    }
                }
                Event::Class { key, .. } => *key = (s.lock)(number(key, "L")),
                Event::Site { loc, .. } => match s.loc {
                    Some(f) => *loc = format!("loc {}", f(number(loc, "loc "))),
                    None => continue,
                },
                Event::Acquire { s: site, .. } | Event::Request { s: site, .. }
                    if s.loc.is_none() =>
                {
                    *site = None
                }
                _ => {}
            }
            want.push(e);
        }
        let text = spelled_trace(s);
        assert_eq!(read(&text, false), want, "{}", s.what);
        assert_eq!(read(&text, true), want, "{} (cut by the reads)", s.what);
    }
}

/// Everything a reader yields, and where it stopped: the events, then the error if any.
fn read_with(bytes: &[u8], format: InputFormat, printable: bool) -> Vec<Result<Event, String>> {
    TraceReader::from_reader("mem", Box::new(Cursor::new(bytes.to_vec())), format)
        .printable(printable)
        .map(|e| e.map_err(|e| e.to_string()))
        .collect()
}

/// `printable(true)` (what `lockcheck analyze` reads with) yields exactly what the plain reader
/// yields passed through [`make_printable`], which `analyze` applied to each batch before: for
/// every format, on the fixtures and on traces whose names hold terminal escapes, a bidirectional
/// override, a newline in a JSON string and an empty name. Fails if a translator queues a
/// declaration without [`Translator::declare`].
#[test]
fn printable_reading_is_make_printable_of_the_plain_reading() {
    let mut inputs: Vec<(Vec<u8>, InputFormat)> = vec![
        (
            b"T\x1b[31m|acq(L\xe2\x80\xaex)|Foo\x07.java:1\nT\x1b[31m|rel(L\xe2\x80\xaex)\nT1|acq(L3)|42\nT1|rel(L3)|42\nT2|fork(\x1b]0;t)\n"
                .to_vec(),
            InputFormat::Std,
        ),
        (
            br#"{"e":"header","version":1,"pid":1,"program":"p\u001b[2J","start_unix_ms":0}
{"e":"thread","t":1,"name":"a\nVIOLATION"}
{"e":"thread","t":2,"name":""}
{"e":"class","c":1,"key":"","kind":"mutex"}
"#
            .to_vec(),
            InputFormat::Json,
        ),
    ];
    for (dir, format) in [
        ("std", InputFormat::Std),
        ("rapidbin", InputFormat::RapidBin),
        ("json", InputFormat::Json),
        ("bad", InputFormat::Std),
    ] {
        for entry in std::fs::read_dir(fixture(dir)).expect("fixtures") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                inputs.push((std::fs::read(&path).expect("fixture"), format));
            }
        }
    }
    let lct = {
        let json = std::fs::read(fixture("json/all-events.jsonl")).expect("fixture");
        let mut out = lockcheck_core::lct::MAGIC.to_vec();
        for e in read_with(&json, InputFormat::Json, false)
            .into_iter()
            .flatten()
        {
            lockcheck_core::lct::encode(&e, &mut out);
        }
        out
    };
    inputs.push((lct, InputFormat::Lct));
    let mut escaped = 0;
    for (bytes, format) in &inputs {
        let plain = read_with(bytes, *format, false);
        let mut want_events: Vec<Event> = plain.iter().filter_map(|e| e.clone().ok()).collect();
        make_printable(&mut want_events);
        let got = read_with(bytes, *format, true);
        let got_events: Vec<Event> = got.iter().filter_map(|e| e.clone().ok()).collect();
        let errors = |v: &[Result<Event, String>]| -> Vec<String> {
            v.iter().filter_map(|e| e.clone().err()).collect()
        };
        assert_eq!(got_events, want_events, "{format:?}");
        assert_eq!(errors(&got), errors(&plain), "{format:?}");
        escaped += usize::from(
            got_events
                .iter()
                .zip(&plain)
                .any(|(g, p)| Some(g) != p.as_ref().ok()),
        );
    }
    // The crafted traces had names to escape.
    assert!(escaped >= 2, "{escaped}");
}
