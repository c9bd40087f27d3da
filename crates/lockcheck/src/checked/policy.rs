//! The reader of timeout policy files (`LOCKCHECK_POLICY`): the `[wait_timeout]` table of a TOML
//! file, as `lockcheck analyze --timeouts-toml` writes it.
//!
//! Hand-written on purpose. The runtime crate is what users depend on, and it must not add
//! dependencies to their graph (a TOML crate is a dozen crates and a noticeable part of a first
//! build, for one table read once at start-up). The analyzer, which writes these files and reads
//! richer configuration, keeps the real `toml` crate. So this reads the TOML syntax a policy file
//! can use, not all of TOML:
//!
//! - comments, blank lines, `[table]` and `[[array.of.tables]]` headers, `key = value` lines;
//! - keys: bare, `"basic"` (with escapes) or `'literal'`, dotted (`wait_timeout."a" = ...`);
//! - values: basic, literal and multi-line strings, integers (decimal with `_`, `0x`, `0o`, `0b`),
//!   and, to be skipped in other tables, booleans, floats, dates, arrays and inline tables.
//!
//! Entries of `wait_timeout` must be a duration string (`"50ms"`, `"2s"`) or a whole number of
//! milliseconds. Anything else, and any syntax this reader does not know, is an error naming the
//! line and column: a policy is never half-read in silence.

use std::time::Duration;

/// A parsed value: what the policy needs, and the kind of anything else (to name it in errors).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
    /// An inline table: its entries, keys already split at dots.
    Table(Vec<(Vec<String>, Value)>),
    /// A value the policy never uses: `"boolean"`, `"float"`, `"datetime"`, `"array"`.
    Other(&'static str),
}

/// Reads the `wait_timeout` entries (class key, timeout) of a policy file, in file order.
/// Errors are one line: `line L, column C: what was expected`.
pub(crate) fn wait_timeouts(text: &str) -> Result<Vec<(String, Duration)>, String> {
    let mut p = Parser {
        s: text,
        pos: 0,
        table: Vec::new(),
        headers: Vec::new(),
        out: Vec::new(),
    };
    p.document().map_err(|(pos, msg)| {
        let (line, col) = line_col(text, pos);
        format!("line {line}, column {col}: {msg}")
    })?;
    Ok(p.out)
}

fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

type Res<T> = Result<T, (usize, String)>;

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    /// The current `[table]` path.
    table: Vec<String>,
    /// Table headers seen (a table defined twice is an error, as in TOML).
    headers: Vec<Vec<String>>,
    out: Vec<(String, Duration)>,
}

const TABLE: &str = "wait_timeout";

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn err<T>(&self, msg: impl Into<String>) -> Res<T> {
        Err((self.pos, msg.into()))
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, prefix: &str) -> bool {
        if self.rest().starts_with(prefix) {
            self.pos += prefix.len();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }

    /// Spaces, then an optional comment, then the end of the line (consumed) or of the text.
    fn end_of_line(&mut self) -> Res<()> {
        self.skip_ws();
        if self.peek() == Some('#') {
            while !matches!(self.peek(), None | Some('\n')) {
                self.bump();
            }
        }
        match self.peek() {
            None => Ok(()),
            Some('\n') => {
                self.pos += 1;
                Ok(())
            }
            Some('\r') if self.rest().starts_with("\r\n") => {
                self.pos += 2;
                Ok(())
            }
            Some(c) => self.err(format!("expected the end of the line, found {c:?}")),
        }
    }

    /// Whitespace, newlines and comments (inside arrays and inline tables).
    fn skip_blank(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\n' | '\r') => self.pos += 1,
                Some('#') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                _ => return,
            }
        }
    }

    fn document(&mut self) -> Res<()> {
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Ok(()),
                Some('#' | '\n' | '\r') => self.end_of_line()?,
                Some('[') => self.header()?,
                Some(_) => {
                    let at = self.pos;
                    let key = self.key()?;
                    self.skip_ws();
                    if !self.eat("=") {
                        return self.err("expected `=` after the key");
                    }
                    self.skip_ws();
                    let value = self.value()?;
                    self.end_of_line()?;
                    let mut path = self.table.clone();
                    path.extend(key);
                    self.entry(at, path, value)?;
                }
            }
        }
    }

    fn header(&mut self) -> Res<()> {
        let at = self.pos;
        let array = self.eat("[[");
        if !array {
            self.eat("[");
        }
        self.skip_ws();
        let path = self.key()?;
        self.skip_ws();
        if !self.eat(if array { "]]" } else { "]" }) {
            return self.err(if array {
                "expected `]]` to close the table header"
            } else {
                "expected `]` to close the table header"
            });
        }
        self.end_of_line()?;
        if path.first().map(String::as_str) == Some(TABLE) {
            if array || path.len() > 1 {
                return Err((
                    at,
                    format!("`{TABLE}` must be one table of class = duration"),
                ));
            }
            if self.headers.contains(&path) {
                return Err((at, format!("table `[{TABLE}]` defined twice")));
            }
        }
        if !array {
            self.headers.push(path.clone());
        }
        self.table = path;
        Ok(())
    }

    /// One `key = value` at its full path.
    fn entry(&mut self, at: usize, path: Vec<String>, value: Value) -> Res<()> {
        if path.first().map(String::as_str) != Some(TABLE) {
            return Ok(());
        }
        match (path.len(), value) {
            (1, Value::Table(entries)) => {
                for (key, v) in entries {
                    let mut p = path.clone();
                    p.extend(key);
                    self.entry(at, p, v)?;
                }
                Ok(())
            }
            (1, _) => Err((at, format!("`{TABLE}` must be a table of class = duration"))),
            (2, v) => {
                let class = &path[1];
                let d = match &v {
                    Value::Str(s) => super::watch::parse_duration(s),
                    Value::Int(ms) if *ms >= 0 => Some(Duration::from_millis(*ms as u64)),
                    _ => None,
                }
                .ok_or_else(|| {
                    (
                        at,
                        format!("{TABLE}.{class:?}: expected a duration like \"50ms\""),
                    )
                })?;
                if self.out.iter().any(|(c, _)| c == class) {
                    return Err((at, format!("{TABLE}.{class:?} is set twice")));
                }
                self.out.push((class.clone(), d));
                Ok(())
            }
            _ => Err((
                at,
                format!(
                    "{}: expected a duration like \"50ms\" (`{TABLE}` holds class = duration)",
                    path.join(".")
                ),
            )),
        }
    }

    /// A possibly dotted key.
    fn key(&mut self) -> Res<Vec<String>> {
        let mut parts = vec![self.simple_key()?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.eat(".") {
                self.skip_ws();
                parts.push(self.simple_key()?);
            } else {
                self.pos = save;
                return Ok(parts);
            }
        }
    }

    fn simple_key(&mut self) -> Res<String> {
        match self.peek() {
            Some('"') => {
                if self.rest().starts_with("\"\"\"") {
                    return self.err("a key cannot be a multi-line string");
                }
                self.basic_string()
            }
            Some('\'') => {
                if self.rest().starts_with("'''") {
                    return self.err("a key cannot be a multi-line string");
                }
                self.literal_string()
            }
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    self.pos += 1;
                }
                if self.pos == start {
                    return match self.peek() {
                        Some(c) => self.err(format!("expected a key, found {c:?}")),
                        None => self.err("expected a key, found the end of the file"),
                    };
                }
                Ok(self.s[start..self.pos].to_owned())
            }
        }
    }

    fn value(&mut self) -> Res<Value> {
        match self.peek() {
            Some('"') if self.rest().starts_with("\"\"\"") => self.ml_string(true).map(Value::Str),
            Some('\'') if self.rest().starts_with("'''") => self.ml_string(false).map(Value::Str),
            Some('"') => self.basic_string().map(Value::Str),
            Some('\'') => self.literal_string().map(Value::Str),
            Some('[') => self.array(),
            Some('{') => self.inline_table(),
            Some(_) => self.scalar(),
            None => self.err("expected a value, found the end of the file"),
        }
    }

    fn basic_string(&mut self) -> Res<String> {
        self.pos += 1; // the opening quote
        let mut out = String::new();
        loop {
            match self.bump() {
                None | Some('\n') => return self.err("unterminated string"),
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.escape()?),
                Some(c) if is_control(c) => {
                    return self.err(format!("control character {c:?} in a string"))
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Res<char> {
        let hex = |p: &mut Self, n: usize| -> Res<char> {
            let digits = p.rest().get(..n).unwrap_or("");
            let code = u32::from_str_radix(digits, 16)
                .ok()
                .filter(|_| digits.len() == n && digits.bytes().all(|b| b.is_ascii_hexdigit()));
            match code.and_then(char::from_u32) {
                Some(c) => {
                    p.pos += n;
                    Ok(c)
                }
                None => p.err(format!("invalid unicode escape (expected {n} hex digits)")),
            }
        };
        match self.bump() {
            Some('b') => Ok('\u{8}'),
            Some('t') => Ok('\t'),
            Some('n') => Ok('\n'),
            Some('f') => Ok('\u{c}'),
            Some('r') => Ok('\r'),
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('u') => hex(self, 4),
            Some('U') => hex(self, 8),
            Some(c) => self.err(format!("invalid escape `\\{c}`")),
            None => self.err("unterminated string"),
        }
    }

    fn literal_string(&mut self) -> Res<String> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.bump() {
                None | Some('\n') => return self.err("unterminated string"),
                Some('\'') => return Ok(self.s[start..self.pos - 1].to_owned()),
                Some(c) if is_control(c) => {
                    return self.err(format!("control character {c:?} in a string"))
                }
                Some(_) => {}
            }
        }
    }

    /// `"""..."""` (with escapes) or `'''...'''`.
    fn ml_string(&mut self, basic: bool) -> Res<String> {
        let delim = if basic { "\"\"\"" } else { "'''" };
        let q = if basic { '"' } else { '\'' };
        self.pos += 3;
        // A newline right after the opening delimiter is trimmed.
        if !self.eat("\n") {
            self.eat("\r\n");
        }
        let mut out = String::new();
        loop {
            if self.rest().starts_with(delim) {
                // Up to two quotes may end the content right before the closing delimiter.
                let run = self.rest().chars().take_while(|&c| c == q).count();
                if run > 5 {
                    return self.err("too many quotes in a multi-line string");
                }
                out.extend(std::iter::repeat_n(q, run - 3));
                self.pos += run;
                return Ok(out);
            }
            match self.bump() {
                None => return self.err("unterminated multi-line string"),
                Some('\\') if basic => {
                    // A backslash at the end of a line trims the newline and following blanks.
                    let save = self.pos;
                    self.skip_ws();
                    if matches!(self.peek(), Some('\n' | '\r')) {
                        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
                            self.pos += 1;
                        }
                    } else {
                        self.pos = save;
                        out.push(self.escape()?);
                    }
                }
                Some(c) if is_control(c) && c != '\n' && c != '\r' => {
                    return self.err(format!("control character {c:?} in a string"))
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn array(&mut self) -> Res<Value> {
        self.pos += 1;
        loop {
            self.skip_blank();
            if self.eat("]") {
                return Ok(Value::Other("array"));
            }
            self.value()?;
            self.skip_blank();
            if self.eat("]") {
                return Ok(Value::Other("array"));
            }
            if !self.eat(",") {
                return self.err("expected `,` or `]` in an array");
            }
        }
    }

    fn inline_table(&mut self) -> Res<Value> {
        self.pos += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_blank();
            if self.eat("}") {
                return Ok(Value::Table(entries));
            }
            let key = self.key()?;
            self.skip_ws();
            if !self.eat("=") {
                return self.err("expected `=` after the key");
            }
            self.skip_ws();
            let v = self.value()?;
            if entries.iter().any(|(k, _)| *k == key) {
                return self.err(format!("key `{}` set twice", key.join(".")));
            }
            entries.push((key, v));
            self.skip_blank();
            if self.eat("}") {
                return Ok(Value::Table(entries));
            }
            if !self.eat(",") {
                return self.err("expected `,` or `}` in an inline table");
            }
        }
    }

    /// Numbers, booleans, dates: a bare token.
    fn scalar(&mut self) -> Res<Value> {
        let start = self.pos;
        let token_end = |p: &Self, from: usize| {
            from + p.s[from..]
                .find([' ', '\t', '\n', '\r', ',', ']', '}', '#'])
                .unwrap_or(p.s.len() - from)
        };
        let mut end = token_end(self, start);
        let tok = &self.s[start..end];
        let is_date = shaped(tok, b"dddd-dd-dd");
        // A date and a time may be separated by a space: `1979-05-27 07:32:00`.
        if is_date
            && tok.len() == 10
            && self.s[end..].starts_with(' ')
            && self.s[end + 1..].starts_with(|c: char| c.is_ascii_digit())
        {
            end = token_end(self, end + 1);
        }
        let tok = &self.s[start..end];
        let v = if tok == "true" || tok == "false" {
            Value::Other("boolean")
        } else if let Some(n) = integer(tok) {
            match n {
                Some(n) => Value::Int(n),
                None => return self.err(format!("integer `{tok}` out of range")),
            }
        } else if is_date || shaped(tok, b"dd:dd:dd") {
            Value::Other("datetime")
        } else if is_float(tok) {
            Value::Other("float")
        } else if tok.is_empty() {
            return self.err("expected a value");
        } else {
            return self.err(format!(
                "invalid value `{tok}` (strings need quotes: \"50ms\")"
            ));
        };
        self.pos = end;
        Ok(v)
    }
}

/// Whether `tok` starts with `pattern`, where `d` is any ASCII digit (dates and times).
fn shaped(tok: &str, pattern: &[u8]) -> bool {
    tok.len() >= pattern.len()
        && tok.bytes().zip(pattern).all(|(b, &p)| {
            if p == b'd' {
                b.is_ascii_digit()
            } else {
                b == p
            }
        })
}

fn is_control(c: char) -> bool {
    (c < ' ' && c != '\t') || c == '\u{7f}'
}

/// `Some(Some(n))` for a TOML integer, `Some(None)` for one out of range, `None` for no integer.
fn integer(tok: &str) -> Option<Option<i64>> {
    let (radix, digits, neg) = if let Some(d) = tok.strip_prefix("0x") {
        (16, d, false)
    } else if let Some(d) = tok.strip_prefix("0o") {
        (8, d, false)
    } else if let Some(d) = tok.strip_prefix("0b") {
        (2, d, false)
    } else if let Some(d) = tok.strip_prefix('-') {
        (10, d, true)
    } else {
        (10, tok.strip_prefix('+').unwrap_or(tok), false)
    };
    let ok_digits = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c == '_' || c.is_digit(radix))
        && !(radix == 10 && digits.len() > 1 && digits.starts_with('0'));
    if !ok_digits {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    let n = i64::from_str_radix(&clean, radix).ok();
    Some(if neg { n.map(|n| -n) } else { n })
}

fn is_float(tok: &str) -> bool {
    let t = tok.strip_prefix(['+', '-']).unwrap_or(tok);
    if t == "inf" || t == "nan" {
        return true;
    }
    t.starts_with(|c: char| c.is_ascii_digit())
        && t.contains(['.', 'e', 'E'])
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ok(text: &str) -> Vec<(String, Duration)> {
        wait_timeouts(text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    fn err(text: &str) -> String {
        match wait_timeouts(text) {
            Ok(v) => panic!("accepted {v:?}\n---\n{text}"),
            Err(e) => e,
        }
    }

    /// What `lockcheck analyze --timeouts-toml` writes (`timeouts::to_toml`), class keys with
    /// every character its quoting escapes.
    #[test]
    fn reads_what_the_analyzer_writes() {
        let text = "# Per-class wait timeouts suggested by `lockcheck analyze` from 2 traces.\n\
            # timeout = ceil_to_ms(max(10 x p99 wait, 2 x max wait, 10 ms)); see docs/analyze.md.\n\
            \n\
            [wait_timeout]\n\
            # src/db.rs:10:5: 40 waits, p99 1.2ms, max 3ms: 10 x p99\n\
            #   [livelock-risk] a waiter of this class holds another lock\n\
            \"src/db.rs:10:5\" = \"12ms\"\n\
            \"pool\" = \"10ms\"\n\
            \"with \\\"quotes\\\" and \\\\ and \\u000A newline\" = \"250ms\"\n\
            \"unicode é ✓\" = \"1000ms\"\n";
        assert_eq!(
            ok(text),
            vec![
                ("src/db.rs:10:5".into(), ms(12)),
                ("pool".into(), ms(10)),
                ("with \"quotes\" and \\ and \n newline".into(), ms(250)),
                ("unicode é ✓".into(), ms(1000)),
            ]
        );
        // Windows line ends.
        assert_eq!(ok(&text.replace('\n', "\r\n")).len(), 4);
    }

    #[test]
    fn reads_the_toml_a_person_would_write() {
        let text = r#"
            title = "policy"   # other keys and tables are skipped
            [other]
            list = [1, 2.5, "x", [true], { a = 1 },
                    # a comment inside
                    'y', ]
            when = 1979-05-27 07:32:00Z
            big = 1e10
            flag = false
            text = """
            multi "line" \
              string"""
            raw = '''also ''multi'' line'''
            [[jobs]]
            name = 'a'

            [ wait_timeout ]   # spaces in the header
            plain_key = 50
            'literal key' = "2s"
            "1.5s" = "1.5s"
            hex = 0x10
            under = 1_000
        "#;
        assert_eq!(
            ok(text),
            vec![
                ("plain_key".into(), ms(50)),
                ("literal key".into(), ms(2000)),
                ("1.5s".into(), ms(1500)),
                ("hex".into(), ms(16)),
                ("under".into(), ms(1000)),
            ]
        );
        assert_eq!(
            ok("wait_timeout.\"a\" = \"5ms\"\nwait_timeout.b = 7\n"),
            vec![("a".into(), ms(5)), ("b".into(), ms(7))]
        );
        assert_eq!(
            ok("wait_timeout = { \"a\" = \"5ms\", b = '1s' }\n"),
            vec![("a".into(), ms(5)), ("b".into(), ms(1000))]
        );
        assert!(ok("").is_empty());
        assert!(ok("# nothing\n[other]\nx = 1").is_empty());
    }

    #[test]
    fn malformed_files_are_clear_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "[wait_timeout]\n\"a\" = \"soon\"\n",
                "line 2, column 1: wait_timeout.\"a\": expected a duration",
            ),
            ("[wait_timeout]\na = -5\n", "expected a duration"),
            ("[wait_timeout]\na = true\n", "expected a duration"),
            ("[wait_timeout]\na = [1]\n", "expected a duration"),
            (
                "[wait_timeout]\na = 5ms\n",
                "line 2, column 5: invalid value `5ms`",
            ),
            ("[wait_timeout]\n\"a = \"5ms\"\n", "line 2"),
            ("[wait_timeout]\na \"5ms\"\n", "expected `=`"),
            ("[wait_timeout\na = 1\n", "line 1, column 14: expected `]`"),
            (
                "[wait_timeout]\na = 1 b = 2\n",
                "expected the end of the line",
            ),
            ("[wait_timeout]\na = 1\na = 2\n", "set twice"),
            ("[wait_timeout]\n[wait_timeout]\n", "defined twice"),
            ("[wait_timeout.x]\na = 1\n", "must be one table"),
            ("[[wait_timeout]]\na = 1\n", "must be one table"),
            ("wait_timeout = 5\n", "must be a table"),
            (
                "[wait_timeout]\na.b = \"5ms\"\n",
                "wait_timeout.a.b: expected a duration",
            ),
            ("[wait_timeout]\na = \"\\q\"\n", "invalid escape"),
            ("[wait_timeout]\na = \"\\u12\"\n", "invalid unicode escape"),
            (
                "[wait_timeout]\na = \"\"\"never closed\n",
                "unterminated multi-line string",
            ),
            ("[wait_timeout]\na = 99999999999999999999\n", "out of range"),
            (
                "[wait_timeout]\na =\n",
                "line 2, column 4: expected a value",
            ),
            (
                "[wait_timeout]\na = ",
                "expected a value, found the end of the file",
            ),
            ("x = [1, 2\n", "expected `,` or `]`"),
            ("x = { a = 1\n", "expected `,` or `}`"),
            ("= 1\n", "expected a key"),
            ("a\u{0}b = 1\n", "expected `=`"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.contains(want), "{text:?}: got {e:?}, want {want:?}");
            assert!(e.starts_with("line "), "{e}");
        }
    }

    /// Every prefix of a valid file and every single-byte corruption: an answer, never a panic.
    #[test]
    fn never_panics() {
        let text = "# c\n[wait_timeout]\n\"a\\u00e9\" = \"5ms\"\nb = '''x\n'''\nc = [1, {d = 2}]\nw = 1979-05-27 07:32:00\n";
        for cut in 0..=text.len() {
            if text.is_char_boundary(cut) {
                let _ = wait_timeouts(&text[..cut]);
            }
        }
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            for b in [
                b'"', b'\'', b'[', b']', b'{', b'\\', b'\n', b'=', b'.', b'#', b' ', 0,
            ] {
                let mut v = bytes.to_vec();
                v[i] = b;
                if let Ok(s) = std::str::from_utf8(&v) {
                    let _ = wait_timeouts(s);
                }
            }
        }
    }
}
