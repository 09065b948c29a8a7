//! The reader: source bytes to [`Datum`]s.
//!
//! It reads integers (`i64`; a literal out of range is an error, never a wrap), floats, strings
//! with escapes, characters (`#\a`, `#\space`, `#\newline`, `#\x41`), `#t`/`#f`, symbols,
//! lists with `()` or `[]`, dotted pairs, vectors `#(...)`, the prefixes `'` `` ` `` `,` `,@`,
//! and comments `;`, `#| |#` (nesting) and `#;` (the next datum).
//!
//! # Invariants
//!
//! - No input makes it panic or overflow the host stack: the parser keeps open lists on an
//!   explicit stack, bounded by a nesting limit ([`DEFAULT_MAX_DEPTH`] unless set) that gives
//!   an error saying so. Quote prefixes count as nesting.
//! - Every error names the `file:line:col` it is about (for an unterminated list, string or
//!   comment: where it opened) and what to do or what was expected.
//! - Invalid UTF-8 is an error at the first bad byte.

use super::datum::{Datum, DatumKind, Span};
use std::fmt;
use std::sync::Arc;

/// The nesting limit of a [`Reader`] unless [`Reader::max_depth`] says otherwise.
pub const DEFAULT_MAX_DEPTH: usize = 10_000;

/// A read error: where, and what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// The file name given to the reader.
    pub file: Arc<str>,
    /// Where the problem is.
    pub span: Span,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: read error: {}", self.file, self.span, self.message)
    }
}

impl std::error::Error for ReadError {}

/// Reads every datum of `source`; `file` names it in locations and errors.
///
/// # Errors
///
/// The first [`ReadError`].
///
/// # Examples
///
/// ```
/// let err = omni::lisp::read_all("(+ 1\n  (* 2 3)", "x.olisp").unwrap_err();
/// assert_eq!(err.to_string(), "x.olisp:1:1: read error: this list is never closed (a `)` is missing)");
/// ```
pub fn read_all(source: impl AsRef<[u8]>, file: &str) -> Result<Vec<Datum>, ReadError> {
    Reader::new(source.as_ref(), file).collect()
}

/// Reads data one at a time from a source: an iterator of `Result<Datum, ReadError>` that ends
/// after the last datum, or after the first error.
#[derive(Debug)]
pub struct Reader<'s> {
    src: &'s [u8],
    /// The prefix of `src` that is valid UTF-8; an error waits past it.
    valid: usize,
    pos: usize,
    line: u32,
    col: u32,
    file: Arc<str>,
    max_depth: usize,
    failed: bool,
}

/// An open construct waiting for its items.
enum Open {
    List { items: Vec<Datum>, tail: Option<Datum>, dot: Option<Span>, at: Span, close: u8 },
    Vector { items: Vec<Datum>, at: Span },
    Prefix { name: &'static str, at: Span },
    Skip { at: Span },
}

fn is_delimiter(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'[' | b']' | b'"' | b';' | b'\'' | b'`' | b',')
        || b.is_ascii_whitespace()
}

/// The names `#\name` uses for characters that have one.
pub(crate) fn char_name(c: char) -> Option<&'static str> {
    Some(match c {
        ' ' => "space",
        '\n' => "newline",
        '\t' => "tab",
        '\r' => "return",
        '\0' => "nul",
        '\x07' => "alarm",
        '\x08' => "backspace",
        '\x7f' => "delete",
        '\x1b' => "escape",
        _ => return None,
    })
}

impl<'s> Reader<'s> {
    /// A reader of `src`, naming it `file` in locations.
    pub fn new(src: &'s [u8], file: &str) -> Reader<'s> {
        let valid = match std::str::from_utf8(src) {
            Ok(_) => src.len(),
            Err(e) => e.valid_up_to(),
        };
        Reader {
            src,
            valid,
            pos: 0,
            line: 1,
            col: 1,
            file: file.into(),
            max_depth: DEFAULT_MAX_DEPTH,
            failed: false,
        }
    }

    /// Sets the nesting limit (lists, vectors and quote prefixes inside each other).
    pub fn max_depth(mut self, depth: usize) -> Reader<'s> {
        self.max_depth = depth;
        self
    }

    fn here(&self) -> Span {
        Span { line: self.line, col: self.col, offset: self.pos }
    }

    fn error(&mut self, span: Span, message: impl Into<String>) -> ReadError {
        self.failed = true;
        ReadError { file: self.file.clone(), span, message: message.into() }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.src.get(self.pos + k).copied()
    }

    /// Advances one byte, keeping line and column (columns count characters, so UTF-8
    /// continuation bytes do not move them).
    fn bump(&mut self) {
        if let Some(b) = self.peek() {
            self.pos += 1;
            if b == b'\n' {
                self.line += 1;
                self.col = 1;
            } else if b & 0xC0 != 0x80 {
                self.col += 1;
            }
        }
    }

    /// Fails at the first invalid byte once the reader gets there.
    fn check_utf8(&mut self) -> Result<(), ReadError> {
        if self.pos >= self.valid && self.valid < self.src.len() {
            let at = self.here();
            return Err(self.error(at, "invalid UTF-8: OmniLisp source must be UTF-8 text"));
        }
        Ok(())
    }

    /// Skips whitespace and `;` and `#| |#` comments.
    fn skip_atmosphere(&mut self) -> Result<(), ReadError> {
        loop {
            self.check_utf8()?;
            match self.peek() {
                Some(b) if b.is_ascii_whitespace() => self.bump(),
                Some(b';') => {
                    while let Some(b) = self.peek() {
                        if b == b'\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some(b'#') if self.peek_at(1) == Some(b'|') => {
                    let at = self.here();
                    self.bump();
                    self.bump();
                    let mut depth = 1usize;
                    while depth > 0 {
                        match (self.peek(), self.peek_at(1)) {
                            (None, _) => {
                                return Err(
                                    self.error(at, "this `#|` comment is never closed (`|#`)")
                                )
                            }
                            (Some(b'|'), Some(b'#')) => {
                                self.bump();
                                self.bump();
                                depth -= 1;
                            }
                            (Some(b'#'), Some(b'|')) => {
                                self.bump();
                                self.bump();
                                depth += 1;
                            }
                            _ => self.bump(),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The bytes of an atom (up to a delimiter), as text.
    fn token(&mut self) -> Result<&'s str, ReadError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_delimiter(b) {
                break;
            }
            self.bump();
        }
        if self.pos > self.valid {
            let at = Span { offset: self.valid, ..self.here() };
            return Err(self.error(at, "invalid UTF-8: OmniLisp source must be UTF-8 text"));
        }
        // The range is inside the valid prefix and ends at an ASCII delimiter or the end.
        std::str::from_utf8(&self.src[start..self.pos]).map_err(|_| {
            let at = self.here();
            self.error(at, "invalid UTF-8: OmniLisp source must be UTF-8 text")
        })
    }

    fn atom(&mut self, at: Span) -> Result<Datum, ReadError> {
        let text = self.token()?;
        let kind = if let Some(kind) = number(text) {
            match kind {
                Ok(k) => k,
                Err(msg) => return Err(self.error(at, msg)),
            }
        } else {
            DatumKind::Symbol(text.to_string())
        };
        Ok(Datum::new(kind, at))
    }

    fn string(&mut self, at: Span) -> Result<Datum, ReadError> {
        self.bump(); // the opening quote
        let mut out = String::new();
        loop {
            self.check_utf8()?;
            let Some(b) = self.peek() else {
                return Err(self.error(at, "this string is never closed (a `\"` is missing)"));
            };
            match b {
                b'"' => {
                    self.bump();
                    return Ok(Datum::new(DatumKind::Str(out), at));
                }
                b'\\' => {
                    let esc_at = self.here();
                    self.bump();
                    let Some(e) = self.peek() else {
                        return Err(
                            self.error(at, "this string is never closed (a `\"` is missing)")
                        );
                    };
                    if self.line_continuation() {
                        continue;
                    }
                    self.bump();
                    out.push(match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'a' => '\x07',
                        b'0' => '\0',
                        b'\\' => '\\',
                        b'"' => '"',
                        b'x' => {
                            let start = self.pos;
                            while matches!(self.peek(), Some(c) if c.is_ascii_hexdigit()) {
                                self.bump();
                            }
                            let hex = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
                            if self.peek() == Some(b';') {
                                self.bump();
                            }
                            match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                                Some(c) => c,
                                None => {
                                    return Err(self.error(
                                        esc_at,
                                        "bad `\\x` escape: write `\\x41;` (hex digits of a Unicode scalar value, then `;`)",
                                    ))
                                }
                            }
                        }
                        other => {
                            let shown = if other.is_ascii_graphic() {
                                format!("`\\{}`", other as char)
                            } else {
                                "`\\` followed by a non-printing byte".to_string()
                            };
                            return Err(self.error(
                                esc_at,
                                format!("unknown escape {shown} in a string (known: \\n \\t \\r \\a \\0 \\\\ \\\" \\x41;)"),
                            ));
                        }
                    });
                }
                _ => {
                    // Copy one whole character (it is valid UTF-8 up to `valid`).
                    let start = self.pos;
                    self.bump();
                    while matches!(self.peek(), Some(c) if c & 0xC0 == 0x80)
                        && self.pos < self.valid
                    {
                        self.bump();
                    }
                    match std::str::from_utf8(&self.src[start..self.pos]) {
                        Ok(s) => out.push_str(s),
                        Err(_) => {
                            let at = self.here();
                            return Err(
                                self.error(at, "invalid UTF-8: OmniLisp source must be UTF-8 text")
                            );
                        }
                    }
                }
            }
        }
    }

    /// After a `\` in a string: if what follows is a line continuation (spaces or tabs, a line
    /// ending, then spaces or tabs: R7RS `\<intraline whitespace>*<line ending><intraline
    /// whitespace>*`), skips it and says so.
    fn line_continuation(&mut self) -> bool {
        let intraline = |b: Option<u8>| matches!(b, Some(b' ' | b'\t'));
        let mut k = 0;
        while intraline(self.peek_at(k)) {
            k += 1;
        }
        let ending = match (self.peek_at(k), self.peek_at(k + 1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(b'\n' | b'\r'), _) => 1,
            _ => return false,
        };
        for _ in 0..k + ending {
            self.bump();
        }
        while intraline(self.peek()) {
            self.bump();
        }
        true
    }

    /// After `#\`: a character.
    fn character(&mut self, at: Span) -> Result<Datum, ReadError> {
        // The first character is taken even when it is a delimiter: `#\(`, `#\ `.
        let start = self.pos;
        self.bump();
        while matches!(self.peek(), Some(c) if c & 0xC0 == 0x80) && self.pos < self.valid {
            self.bump();
        }
        while let Some(b) = self.peek() {
            if is_delimiter(b) {
                break;
            }
            self.bump();
        }
        if self.pos > self.valid {
            let here = self.here();
            return Err(self.error(here, "invalid UTF-8: OmniLisp source must be UTF-8 text"));
        }
        let text = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
        let mut chars = text.chars();
        let c = match (chars.next(), chars.next()) {
            (Some(c), None) => Some(c),
            (None, _) => None,
            _ => match text {
                "space" => Some(' '),
                "newline" | "linefeed" => Some('\n'),
                "tab" => Some('\t'),
                "return" => Some('\r'),
                "nul" | "null" => Some('\0'),
                "alarm" => Some('\x07'),
                "backspace" => Some('\x08'),
                "delete" => Some('\x7f'),
                "escape" => Some('\x1b'),
                t if t.starts_with('x') => {
                    u32::from_str_radix(&t[1..], 16).ok().and_then(char::from_u32)
                }
                _ => None,
            },
        };
        match c {
            Some(c) => Ok(Datum::new(DatumKind::Char(c), at)),
            None => Err(self.error(
                at,
                format!("unknown character `#\\{text}` (write `#\\a`, `#\\space`, `#\\newline` or `#\\x41`)"),
            )),
        }
    }

    /// Reads the next datum, or `None` at the end of the source.
    fn read_datum(&mut self) -> Result<Option<Datum>, ReadError> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            self.skip_atmosphere()?;
            let at = self.here();
            let Some(b) = self.peek() else {
                return match open.pop() {
                    None => Ok(None),
                    Some(Open::List { at, close, .. }) => {
                        let what = if close == b']' { "`]`" } else { "`)`" };
                        Err(self
                            .error(at, format!("this list is never closed (a {what} is missing)")))
                    }
                    Some(Open::Vector { at, .. }) => {
                        Err(self.error(at, "this vector is never closed (a `)` is missing)"))
                    }
                    Some(Open::Prefix { at, name }) => {
                        Err(self.error(at, format!("`{name}` has no datum after it")))
                    }
                    Some(Open::Skip { at }) => {
                        Err(self.error(at, "`#;` has no datum after it to comment out"))
                    }
                };
            };
            let opened = match b {
                b'(' | b'[' => {
                    self.bump();
                    Some(Open::List {
                        items: Vec::new(),
                        tail: None,
                        dot: None,
                        at,
                        close: if b == b'(' { b')' } else { b']' },
                    })
                }
                b'\'' | b'`' => {
                    self.bump();
                    Some(Open::Prefix { name: if b == b'\'' { "quote" } else { "quasiquote" }, at })
                }
                b',' => {
                    self.bump();
                    let name = if self.peek() == Some(b'@') {
                        self.bump();
                        "unquote-splicing"
                    } else {
                        "unquote"
                    };
                    Some(Open::Prefix { name, at })
                }
                b'#' if self.peek_at(1) == Some(b'(') => {
                    self.bump();
                    self.bump();
                    Some(Open::Vector { items: Vec::new(), at })
                }
                b'#' if self.peek_at(1) == Some(b';') => {
                    self.bump();
                    self.bump();
                    Some(Open::Skip { at })
                }
                _ => None,
            };
            if let Some(o) = opened {
                if open.len() >= self.max_depth {
                    return Err(self.error(
                        at,
                        format!(
                            "nesting deeper than {} levels (lists, vectors and quotes inside \
                             each other); raise the reader's limit if this is intended",
                            self.max_depth
                        ),
                    ));
                }
                open.push(o);
                continue;
            }
            let datum = match b {
                b')' | b']' => {
                    let closing = self.here();
                    self.bump();
                    match open.pop() {
                        Some(Open::List { items, tail, dot, at, close }) if close == b => {
                            if dot.is_some() && tail.is_none() {
                                return Err(self.error(
                                    closing,
                                    "a `.` must be followed by one datum before the list closes",
                                ));
                            }
                            Datum::new(DatumKind::List(items, tail.map(Box::new)), at)
                        }
                        Some(Open::Vector { items, at }) if b == b')' => {
                            Datum::new(DatumKind::Vector(items), at)
                        }
                        Some(Open::List { at, close, .. }) => {
                            return Err(self.error(
                                closing,
                                format!(
                                    "`{}` closes the list opened at {} with `{}`: expected `{}`",
                                    b as char,
                                    at,
                                    if close == b')' { '(' } else { '[' },
                                    close as char
                                ),
                            ))
                        }
                        Some(Open::Vector { at, .. }) => {
                            return Err(self.error(
                                closing,
                                format!("`]` cannot close the vector opened at {at}: expected `)`"),
                            ))
                        }
                        Some(Open::Prefix { name, .. }) => {
                            return Err(self.error(
                                closing,
                                format!("`{name}` has no datum before this `{}`", b as char),
                            ))
                        }
                        Some(Open::Skip { .. }) => {
                            return Err(self.error(
                                closing,
                                format!("`#;` has no datum before this `{}`", b as char),
                            ))
                        }
                        None => {
                            return Err(self.error(
                                closing,
                                format!("unexpected `{}`: no list is open", b as char),
                            ))
                        }
                    }
                }
                b'"' => self.string(at)?,
                b'#' => match self.peek_at(1) {
                    Some(b'\\') => {
                        self.bump();
                        self.bump();
                        if self.peek().is_none() {
                            return Err(self.error(
                                at,
                                "`#\\` at the end of the source: a character name is missing",
                            ));
                        }
                        self.character(at)?
                    }
                    _ => {
                        let text = self.token()?;
                        match text {
                            "#t" | "#true" => Datum::new(DatumKind::Bool(true), at),
                            "#f" | "#false" => Datum::new(DatumKind::Bool(false), at),
                            _ => {
                                return Err(self.error(
                                    at,
                                    format!(
                                        "unknown `#` syntax `{text}` (known: #t #f #\\c #( #| #;)"
                                    ),
                                ))
                            }
                        }
                    }
                },
                b'.' if matches!(open.last(), Some(Open::List { .. }))
                    && self.peek_at(1).is_none_or(is_delimiter) =>
                {
                    self.bump();
                    let Some(Open::List { items, dot, tail, .. }) = open.last_mut() else {
                        unreachable!("checked above")
                    };
                    if items.is_empty() || dot.is_some() || tail.is_some() {
                        return Err(self.error(
                            at,
                            "a `.` goes after one or more items and before the last one: `(a . b)`",
                        ));
                    }
                    *dot = Some(at);
                    continue;
                }
                b'.' if self.peek_at(1).is_none_or(is_delimiter) => {
                    // A lone `.` is only the dot of a dotted list; as a datum it would print as
                    // `.` and read back as that dot.
                    return Err(self.error(
                        at,
                        "unexpected `.`: a dot goes between the last two items of a list, `(a . b)`",
                    ));
                }
                _ => self.atom(at)?,
            };
            // A datum is complete: hand it to what is open, innermost first.
            let mut d = datum;
            loop {
                match open.last_mut() {
                    None => return Ok(Some(d)),
                    Some(Open::Prefix { name, at }) => {
                        let (name, at) = (*name, *at);
                        open.pop();
                        let sym = Datum::new(DatumKind::Symbol(name.to_string()), at);
                        d = Datum::new(DatumKind::List(vec![sym, d], None), at);
                    }
                    Some(Open::Skip { .. }) => {
                        open.pop();
                        break; // the datum is commented out
                    }
                    Some(Open::List { items, dot, tail, .. }) => {
                        if dot.is_some() {
                            if tail.is_some() {
                                let here = d.span();
                                return Err(
                                    self.error(here, "only one datum may follow a `.` in a list")
                                );
                            }
                            *tail = Some(d);
                        } else {
                            items.push(d);
                        }
                        break;
                    }
                    Some(Open::Vector { items, .. }) => {
                        items.push(d);
                        break;
                    }
                }
            }
        }
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<Datum, ReadError>;

    fn next(&mut self) -> Option<Result<Datum, ReadError>> {
        if self.failed {
            return None;
        }
        self.read_datum().transpose()
    }
}

/// Parses `text` as a number: `None` if it is not one (a symbol), `Some(Err)` for an integer
/// literal out of range. The whole of `text` must be the number: no spaces, no comments.
pub(crate) fn number(text: &str) -> Option<Result<DatumKind, String>> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    match text {
        "+inf.0" => return Some(Ok(DatumKind::Float(f64::INFINITY))),
        "-inf.0" => return Some(Ok(DatumKind::Float(f64::NEG_INFINITY))),
        "+nan.0" | "-nan.0" => return Some(Ok(DatumKind::Float(f64::NAN))),
        _ => {}
    }
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(text.parse::<i64>().map(DatumKind::Int).map_err(|_| {
            format!(
                "integer literal `{text}` is out of range: integers are 64-bit, from {} to {}",
                i64::MIN,
                i64::MAX
            )
        }));
    }
    let first = digits.as_bytes()[0];
    let looks_numeric = first.is_ascii_digit() || (first == b'.' && digits.len() > 1);
    if looks_numeric
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        if let Ok(x) = text.parse::<f64>() {
            return Some(Ok(DatumKind::Float(x)));
        }
    }
    None
}
