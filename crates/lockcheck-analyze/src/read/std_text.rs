//! RAPID's text ("STD") format: one event per line, `T1|acq(L3)|42`.

use super::json::line_error;
use super::lines::Lines;
use super::{Fault, Position, ReadError, ThreadKey, Translator, TRUNCATED_HINT};
use lockcheck_core::trace::{Event, How, Mode};

/// The operations of the STD format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Acq,
    Rel,
    Req,
    Read,
    Write,
    Fork,
    Join,
    Begin,
    End,
    Branch,
}

const OPS: &str = "acq, rel, req, r, w, fork, join, begin, end, branch";

impl Op {
    fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "acq" => Op::Acq,
            "rel" => Op::Rel,
            "req" => Op::Req,
            "r" => Op::Read,
            "w" => Op::Write,
            "fork" => Op::Fork,
            "join" => Op::Join,
            "begin" => Op::Begin,
            "end" => Op::End,
            "branch" => Op::Branch,
            _ => return None,
        })
    }

    /// Whether the operation needs an argument (`begin`, `end` and `branch` may go without).
    fn needs_arg(self) -> bool {
        !matches!(self, Op::Begin | Op::End | Op::Branch)
    }

    /// An example argument for messages.
    fn example_arg(self) -> &'static str {
        match self {
            Op::Fork | Op::Join => "2",
            Op::Read | Op::Write => "V1",
            _ => "L3",
        }
    }
}

/// One parsed line, borrowing from it.
#[derive(Debug)]
struct StdLine<'a> {
    thread: &'a str,
    op: Op,
    arg: Option<&'a str>,
    loc: Option<&'a str>,
}

/// A problem at a 1-based column.
type Problem = (u64, String);

/// Decodes STD lines into core events.
pub(super) struct StdDecoder {
    lines: Lines,
    program: String,
    started: bool,
    tr: Translator,
}

impl StdDecoder {
    pub(super) fn new(lines: Lines, program: String) -> StdDecoder {
        StdDecoder {
            lines,
            program,
            started: false,
            tr: Translator::default(),
        }
    }

    pub(super) fn next(&mut self, name: &str) -> Result<Option<Event>, Fault> {
        loop {
            if let Some(event) = self.tr.pop() {
                return Ok(Some(event));
            }
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) if self.started => return Ok(None),
                Ok(None) => {
                    let pos = Position::LineCol {
                        line: self.lines.lines_read() + 1,
                        col: 1,
                    };
                    return Err(Fault::Error(ReadError::new(
                        name,
                        Some(pos),
                        "empty trace (no events)",
                    )));
                }
                Err(e) => return Err(line_error(name, e)),
            };
            if line.bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let (no, terminated) = (line.no, line.terminated);
            let parsed = match std::str::from_utf8(line.bytes) {
                Ok(text) => parse(text),
                Err(e) => Err((e.valid_up_to() as u64 + 1, "invalid UTF-8".to_owned())),
            };
            let parsed = match parsed {
                Ok(p) => p,
                Err((col, message)) => {
                    let at = |col| Some(Position::LineCol { line: no, col });
                    return Err(if terminated {
                        Fault::Error(ReadError::new(name, at(col), message))
                    } else {
                        Fault::Truncated {
                            pos: Position::LineCol { line: no, col: 1 },
                            error: ReadError::new(
                                name,
                                at(col),
                                format!("last line is incomplete ({message}): {TRUNCATED_HINT}"),
                            ),
                        }
                    });
                }
            };
            if !self.started {
                self.tr.header(&self.program);
                self.started = true;
            }
            translate(&mut self.tr, &parsed);
        }
    }
}

/// Queues the events of one line.
fn translate(tr: &mut Translator, p: &StdLine<'_>) {
    let t = tr.thread(thread_key(p.thread));
    // `needs_arg` operations always have one after `parse`.
    let arg = p.arg.unwrap_or("");
    match p.op {
        Op::Acq | Op::Req => {
            let l = tr.lock(arg);
            let s = p.loc.map(|loc| tr.site(loc));
            tr.push(if p.op == Op::Acq {
                Event::Acquire {
                    t,
                    l,
                    m: Mode::Exclusive,
                    how: How::Blocking,
                    s,
                    wait_ns: 0,
                }
            } else {
                Event::Request {
                    t,
                    l,
                    m: Mode::Exclusive,
                    s,
                }
            });
        }
        Op::Rel => {
            let l = tr.lock(arg);
            tr.push(Event::Release { t, l, hold_ns: 0 });
        }
        Op::Fork | Op::Join => {
            let child = tr.thread(thread_key(arg));
            tr.push(if p.op == Op::Fork {
                Event::Fork { t, child }
            } else {
                Event::Join { t, child }
            });
        }
        Op::Read | Op::Write | Op::Begin | Op::End | Op::Branch => {}
    }
}

/// `T9`, `t9` and `9` are thread 9; any other token is a thread of that name.
fn thread_key(token: &str) -> ThreadKey {
    let digits = token.strip_prefix(['T', 't']).unwrap_or(token);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = digits.parse() {
            return ThreadKey::Num(n);
        }
    }
    ThreadKey::Name(token.to_owned())
}

/// Parses `thread|op(arg)|location` (the location may be missing: `thread|op(arg)`).
fn parse(text: &str) -> Result<StdLine<'_>, Problem> {
    let text = text.trim_end();
    // Fields with their 0-based byte offsets.
    let mut fields: [(usize, &str); 3] = [(0, ""); 3];
    let mut count = 0;
    let mut start = 0;
    for (i, piece) in text.split('|').enumerate() {
        if i == 3 {
            return Err((
                start as u64,
                "unexpected `|`: a line has three fields, `thread|op(arg)|location`".to_owned(),
            ));
        }
        fields[i] = (start, piece);
        count = i + 1;
        start += piece.len() + 1;
    }
    if count < 2 {
        return Err((
            text.len() as u64 + 1,
            "expected `|` after the thread: a line is `thread|op(arg)|location`, as in `T1|acq(L3)|42`"
                .to_owned(),
        ));
    }
    let (tcol, thread) = trimmed(fields[0]);
    token(thread, tcol, "thread")?;

    let (ocol, op_field) = trimmed(fields[1]);
    if op_field.is_empty() {
        return Err((ocol, format!("missing operation (one of {OPS})")));
    }
    let (op_name, arg) = match op_field.find('(') {
        Some(open) => {
            let Some(inner) = op_field[open + 1..].strip_suffix(')') else {
                return Err((
                    ocol + op_field.len() as u64,
                    "expected `)` at the end of the operation".to_owned(),
                ));
            };
            let (acol, arg) = trimmed((ocol as usize - 1 + open + 1, inner));
            (&op_field[..open], Some((acol, arg)))
        }
        None => (op_field, None),
    };
    let Some(op) = Op::from_name(op_name) else {
        let shown: String = op_name.chars().take(40).collect();
        return Err((
            ocol,
            format!("unknown operation `{shown}` (expected one of {OPS})"),
        ));
    };
    let arg = match arg {
        Some((acol, a)) if !a.is_empty() => {
            token(a, acol, "argument")?;
            Some(a)
        }
        Some((acol, _)) if op.needs_arg() => {
            return Err((
                acol,
                format!(
                    "`{op_name}` needs an argument, as in `{op_name}({})`",
                    op.example_arg()
                ),
            ));
        }
        None if op.needs_arg() => {
            return Err((
                ocol + op_field.len() as u64,
                format!(
                    "`{op_name}` needs an argument, as in `{op_name}({})`",
                    op.example_arg()
                ),
            ));
        }
        _ => None,
    };
    let loc = if count == 3 {
        let (lcol, loc) = trimmed(fields[2]);
        token(loc, lcol, "location")?;
        Some(loc)
    } else {
        None
    };
    Ok(StdLine {
        thread,
        op,
        arg,
        loc,
    })
}

/// Trims a field, returning the 1-based column where its content starts.
fn trimmed((offset, field): (usize, &str)) -> (u64, &str) {
    let start = field.len() - field.trim_start().len();
    ((offset + start) as u64 + 1, field.trim())
}

/// Checks a thread, lock or location token: non-empty, no blanks or parentheses.
fn token(tok: &str, col: u64, what: &str) -> Result<(), Problem> {
    if tok.is_empty() {
        return Err((col, format!("missing {what}")));
    }
    match tok
        .char_indices()
        .find(|&(_, c)| c.is_whitespace() || c == '(' || c == ')')
    {
        Some((i, c)) => Err((
            col + i as u64,
            format!("unexpected {c:?} in {what} `{tok}`"),
        )),
        None => Ok(()),
    }
}
