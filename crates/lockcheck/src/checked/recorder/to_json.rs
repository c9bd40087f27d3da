//! A JSON Lines recording is written as `.lct` version 5 while it runs and turned into JSON Lines
//! when it stops (`recorder::stop`, also the exit handler's).
//!
//! **Why.** Formatting JSON on the writer thread cost about 634 instructions per recorded pair;
//! with two producers on two cores the producers ended up doing that work (the writer's pass at
//! the backlog bound), and JSON Lines with two threads ran at 4.6x to 5x raw parking_lot against
//! 2.5x for `.lct`. The acquiring thread also tested the format on every record, to write the
//! 40-byte records JSON Lines needed. Now every recording takes the same short records and the
//! same copying writer; the JSON is made once, after the run, from the file.
//!
//! **How.** The file is read back a chunk at a time and decoded with `lockcheck_core`'s reference
//! decoders (`lct::raw::RawDecoder` for the recorder's own records, `lct::decode` for the rest, as
//! the analyzer does); each event is written with `Event::write_line`, the JSON encoding every
//! JSON Lines trace uses, into a temporary file in the same directory, which is then renamed over
//! the path: the rename is atomic, so a reader of the path sees either the whole `.lct` file or the
//! whole JSON Lines file, never half of one. Hand-written rather than through a crate: the two
//! decoders and the encoder are `lockcheck_core`'s, this only loops over them (the runtime takes no
//! new dependency).
//!
//! **A crash first** (a process killed, or `panic = "abort"`, before the conversion) leaves the
//! `.lct` file under the JSON Lines name, cut at its last complete record: `lockcheck analyze` and
//! `lockcheck convert` tell the format by the content, not the name.

use lockcheck_core::lct::{self, raw, DecodeError};
use lockcheck_core::trace::Event;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes read from the `.lct` file at a time (a record is at most `lct::MAX_RECORD_LEN`: the
/// buffer grows to hold one that long, no further).
const READ_CHUNK: usize = 1 << 20;

/// Bytes of JSON gathered before a write.
const WRITE_CHUNK: usize = 1 << 16;

/// Turns the `.lct` trace at `path` into JSON Lines, in place (through a temporary file renamed
/// over it). On an error the `.lct` file is left as it is (still a readable trace) and the
/// temporary file removed.
pub(super) fn convert_in_place(path: &Path) -> io::Result<()> {
    let tmp = temporary_path(path);
    let result = (|| {
        let input = File::open(path)?;
        let output = File::create(&tmp)?;
        convert(input, output)?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "turning the trace {} into JSON Lines failed ({e}); what was written stays in lockcheck's \
                 .lct format, which `lockcheck analyze` reads as well",
                path.display()
            ),
        )
    })
}

/// The temporary file next to `path` (same directory, so that the rename does not cross file
/// systems): `.NAME.lockcheck-PID.tmp`.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.lockcheck-{}.tmp", std::process::id()))
}

/// Decodes the `.lct` bytes of `input` and writes their events to `output` as JSON Lines.
fn convert(mut input: impl Read, mut output: impl Write) -> io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    // Bytes of the file before `buf[0]` (for error positions).
    let mut offset = 0u64;
    let mut eof = false;
    let mut refill = |buf: &mut Vec<u8>, eof: &mut bool| -> io::Result<()> {
        let had = buf.len();
        buf.resize(had + READ_CHUNK, 0);
        let n = loop {
            match input.read(&mut buf[had..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        buf.truncate(had + n.as_ref().copied().unwrap_or(0));
        *eof = n? == 0;
        Ok(())
    };
    while buf.len() < lct::MAGIC.len() && !eof {
        refill(&mut buf, &mut eof)?;
    }
    let version = lct::check_magic(&buf).map_err(|e| invalid(0, &e))?;
    let mut decoder = raw::RawDecoder::for_version(version);
    let mut pos = lct::MAGIC.len();
    let mut events: Vec<Event> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(WRITE_CHUNK + 4096);
    loop {
        let rest = &buf[pos..];
        let step = match decoder.decode(rest, &mut events) {
            Ok(Some(n)) => Ok(Some(n)),
            Ok(None) => lct::decode(rest).map(|d| {
                d.map(|(e, n)| {
                    events.push(e);
                    n
                })
            }),
            Err(e) => Err(e),
        };
        match step {
            Ok(Some(n)) => pos += n,
            Ok(None) | Err(DecodeError::Truncated) if !eof => {
                // More of the file: keep the undecoded rest, read the next chunk.
                buf.drain(..pos);
                offset += pos as u64;
                pos = 0;
                refill(&mut buf, &mut eof)?;
            }
            Ok(None) => break,
            Err(e) => return Err(invalid(offset + pos as u64, &e)),
        }
        for e in events.drain(..) {
            e.write_line(&mut out);
        }
        if out.len() >= WRITE_CHUNK {
            output.write_all(&out)?;
            out.clear();
        }
    }
    output.write_all(&out)?;
    output.flush()
}

fn invalid(at: u64, e: &DecodeError) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the recorded .lct bytes do not decode at byte {at}: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockcheck_core::trace::{How, Mode};

    fn lct_of(events: &[Event]) -> Vec<u8> {
        let mut out = raw::MAGIC_V5.to_vec();
        for e in events {
            lct::encode(e, &mut out);
        }
        out
    }

    fn sample() -> Vec<Event> {
        vec![
            Event::Header {
                version: 1,
                pid: 7,
                program: "p\"q".into(),
                start_unix_ms: 3,
                hold_resolution_ns: 0,
            },
            Event::Thread { t: 1, name: None },
            Event::Acquire {
                t: 1,
                l: 2,
                m: Mode::Exclusive,
                s: None,
                how: How::Blocking,
                wait_ns: 0,
            },
        ]
    }

    #[test]
    fn every_event_becomes_its_json_line() {
        let events = sample();
        let mut json = Vec::new();
        convert(&lct_of(&events)[..], &mut json).unwrap();
        let mut want = Vec::new();
        for e in &events {
            e.write_line(&mut want);
        }
        assert_eq!(
            String::from_utf8(json).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }

    #[test]
    fn a_record_longer_than_a_chunk_is_read_whole() {
        let mut events = sample();
        events.insert(
            1,
            Event::Site {
                s: 0,
                loc: "x".repeat(3 * READ_CHUNK),
                frames: Vec::new(),
            },
        );
        let mut json = Vec::new();
        convert(&lct_of(&events)[..], &mut json).unwrap();
        assert_eq!(json.iter().filter(|&&b| b == b'\n').count(), events.len());
    }

    #[test]
    fn a_cut_or_bad_file_is_an_error_with_its_position() {
        let bytes = lct_of(&sample());
        let e = convert(&bytes[..bytes.len() - 1], Vec::new()).unwrap_err();
        assert!(e.to_string().contains("at byte"), "{e}");
        let e = convert(&b"{\"e\":1}\n"[..], Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
