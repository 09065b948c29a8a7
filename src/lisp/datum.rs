//! `Datum`: what the reader gives, source syntax with locations.
//!
//! A datum tree may be as deep as the reader's nesting limit, so nothing here recurses on the
//! host stack: dropping, printing and comparing walk the tree with an explicit stack. That is
//! what lets the reader refuse a program of a million open parentheses on a thread with a
//! 256 KiB stack, and drop what it had read so far.

use std::fmt;

/// Where a datum starts: 1-based line and column (in characters), and the byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub col: u32,
    /// Byte offset into the source.
    pub offset: usize,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One datum of source and where it starts.
pub struct Datum {
    kind: DatumKind,
    span: Span,
}

/// The kinds of datum.
#[derive(Debug)]
pub enum DatumKind {
    /// An integer (the reader refuses literals outside `i64`).
    Int(i64),
    /// A float.
    Float(f64),
    /// A string, escapes resolved.
    Str(String),
    /// A character: `#\a`, `#\space`, `#\x41`.
    Char(char),
    /// `#t` or `#f`.
    Bool(bool),
    /// A symbol.
    Symbol(String),
    /// A list: its items, and the tail after a dot (`None` for a proper list). `'x` reads as
    /// `(quote x)`, and likewise `` ` `` `,` `,@`.
    List(Vec<Datum>, Option<Box<Datum>>),
    /// A vector `#(...)`.
    Vector(Vec<Datum>),
}

impl Datum {
    /// A datum of `kind` at `span`.
    pub fn new(kind: DatumKind, span: Span) -> Datum {
        Datum { kind, span }
    }

    /// What this datum is.
    pub fn kind(&self) -> &DatumKind {
        &self.kind
    }

    /// Where it starts.
    pub fn span(&self) -> Span {
        self.span
    }

    /// The symbol's name, if this is a symbol.
    pub fn as_symbol(&self) -> Option<&str> {
        match &self.kind {
            DatumKind::Symbol(s) => Some(s),
            _ => None,
        }
    }

    /// The items of a list or vector (not a dotted tail).
    pub fn items(&self) -> &[Datum] {
        match &self.kind {
            DatumKind::List(items, _) | DatumKind::Vector(items) => items,
            _ => &[],
        }
    }

    /// Moves the children of `kind` onto `stack`, leaving it childless.
    fn take_children(kind: &mut DatumKind, stack: &mut Vec<Datum>) {
        match kind {
            DatumKind::List(items, tail) => {
                stack.append(items);
                if let Some(t) = tail.take() {
                    stack.push(*t);
                }
            }
            DatumKind::Vector(items) => stack.append(items),
            _ => {}
        }
    }
}

impl Drop for Datum {
    fn drop(&mut self) {
        let has_children = match &self.kind {
            DatumKind::List(items, tail) => !items.is_empty() || tail.is_some(),
            DatumKind::Vector(items) => !items.is_empty(),
            _ => false,
        };
        if !has_children {
            return;
        }
        // Iteratively: each datum popped here is childless by the time it drops.
        let mut stack = Vec::new();
        Datum::take_children(&mut self.kind, &mut stack);
        while let Some(mut d) = stack.pop() {
            Datum::take_children(&mut d.kind, &mut stack);
        }
    }
}

/// One step of printing: a datum to print, or text to write.
enum Step<'a> {
    Datum(&'a Datum),
    Text(&'static str),
}

/// A float as the reader reads it back: `2.0`, `0.5`, `1e300`, `+inf.0`, `+nan.0`.
pub(crate) fn write_float(f: &mut impl fmt::Write, x: f64) -> fmt::Result {
    if x.is_nan() {
        f.write_str("+nan.0")
    } else if x.is_infinite() {
        f.write_str(if x > 0.0 { "+inf.0" } else { "-inf.0" })
    } else if x.fract() == 0.0 && x.abs() < 1e16 {
        write!(f, "{x:.1}")
    } else if x.abs() >= 1e16 || x.abs() < 1e-5 {
        // `{x}` would print 1e300 as 301 digits, which reads back as an (out of range) integer.
        write!(f, "{x:e}")
    } else {
        write!(f, "{x}")
    }
}

fn write_atom(f: &mut fmt::Formatter<'_>, kind: &DatumKind) -> fmt::Result {
    match kind {
        DatumKind::Int(n) => write!(f, "{n}"),
        DatumKind::Float(x) => write_float(f, *x),
        DatumKind::Str(s) => {
            f.write_str("\"")?;
            for c in s.chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\t' => f.write_str("\\t")?,
                    '\r' => f.write_str("\\r")?,
                    '\x07' => f.write_str("\\a")?,
                    c if c.is_control() => write!(f, "\\x{:x};", c as u32)?,
                    c => write!(f, "{c}")?,
                }
            }
            f.write_str("\"")
        }
        DatumKind::Char(c) => match super::reader::char_name(*c) {
            Some(name) => write!(f, "#\\{name}"),
            None if c.is_control() => write!(f, "#\\x{:x}", *c as u32),
            None => write!(f, "#\\{c}"),
        },
        DatumKind::Bool(b) => f.write_str(if *b { "#t" } else { "#f" }),
        DatumKind::Symbol(s) => f.write_str(s),
        DatumKind::List(..) | DatumKind::Vector(_) => unreachable!("not an atom"),
    }
}

/// Prints the datum as the reader would read it back (`'x` as `(quote x)`).
impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut stack = vec![Step::Datum(self)];
        while let Some(step) = stack.pop() {
            let d = match step {
                Step::Text(t) => {
                    f.write_str(t)?;
                    continue;
                }
                Step::Datum(d) => d,
            };
            let (open, items, tail) = match &d.kind {
                DatumKind::List(items, tail) => ("(", items, tail.as_deref()),
                DatumKind::Vector(items) => ("#(", items, None),
                atom => {
                    write_atom(f, atom)?;
                    continue;
                }
            };
            f.write_str(open)?;
            stack.push(Step::Text(")"));
            if let Some(t) = tail {
                stack.push(Step::Datum(t));
                stack.push(Step::Text(" . "));
            }
            for (i, item) in items.iter().enumerate().rev() {
                stack.push(Step::Datum(item));
                if i > 0 {
                    stack.push(Step::Text(" "));
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} @{}", self.span)
    }
}
