//! RESP2 request framing and reply encoding, shared by `examples/resp.rs` and its tokio twin
//! `benches/resp_tokio.rs` so that both servers do byte for byte the same work.
//!
//! A request is either an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`, what
//! redis-cli and redis-benchmark send) or an inline command (`PING\r\n`, what telnet users and
//! redis-benchmark's `PING_INLINE` send; arguments are split on spaces and tabs, without redis's
//! quoting rules). [`parse`] frames one request at the front of a buffer without copying: the
//! arguments come back as ranges into the buffer. It never panics on any input: malformed
//! requests give [`Frame::Invalid`] with the error to send before closing, as redis does.
//!
//! Limits follow redis: at most 1,048,576 arguments, bulk strings up to 512 MiB, inline requests
//! and header lines up to 64 KiB.

use std::ops::Range;

/// Longest inline request or `*`/`$` header line, as redis's `PROTO_INLINE_MAX_SIZE`.
const INLINE_MAX: usize = 64 * 1024;
/// Most arguments in one array request.
const MULTIBULK_MAX: i64 = 1024 * 1024;
/// Longest bulk string argument, as redis's default `proto-max-bulk-len`.
const BULK_MAX: i64 = 512 * 1024 * 1024;

/// What [`parse`] found at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame {
    /// One whole request of `len` bytes, its arguments left in `args` (none for an empty inline
    /// line or an empty array, which redis skips).
    Command {
        /// Bytes the request takes at the front of the buffer.
        len: usize,
    },
    /// The buffer ends inside a request: read more and parse again from the same start.
    Incomplete,
    /// Not a RESP request: the error message to reply (without `-` and CRLF) before closing.
    Invalid(&'static str),
}

/// Frames one request at the front of `buf`, leaving the ranges of its arguments in `args`.
pub(crate) fn parse(buf: &[u8], args: &mut Vec<Range<usize>>) -> Frame {
    args.clear();
    match buf.first() {
        None => Frame::Incomplete,
        Some(b'*') => match multibulk(buf, args) {
            Ok(Some(len)) => Frame::Command { len },
            Ok(None) => Frame::Incomplete,
            Err(msg) => Frame::Invalid(msg),
        },
        Some(_) => inline(buf, args),
    }
}

fn inline(buf: &[u8], args: &mut Vec<Range<usize>>) -> Frame {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return if buf.len() > INLINE_MAX {
            Frame::Invalid("ERR Protocol error: too big inline request")
        } else {
            Frame::Incomplete
        };
    };
    let end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    let mut start = None;
    for (i, &b) in buf[..end].iter().enumerate() {
        match (b == b' ' || b == b'\t', start) {
            (true, Some(s)) => {
                args.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        args.push(s..end);
    }
    Frame::Command { len: nl + 1 }
}

/// `Ok(Some(len))` for a whole array request, `Ok(None)` when more bytes are needed.
fn multibulk(buf: &[u8], args: &mut Vec<Range<usize>>) -> Result<Option<usize>, &'static str> {
    let Some((count, mut pos)) = header(
        buf,
        1,
        "ERR Protocol error: too big mbulk count string",
        "ERR Protocol error: invalid multibulk length",
    )?
    else {
        return Ok(None);
    };
    if count > MULTIBULK_MAX {
        return Err("ERR Protocol error: invalid multibulk length");
    }
    for _ in 0..count.max(0) {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err("ERR Protocol error: expected '$' before each argument"),
        }
        let Some((len, data)) = header(
            buf,
            pos + 1,
            "ERR Protocol error: too big bulk count string",
            "ERR Protocol error: invalid bulk length",
        )?
        else {
            return Ok(None);
        };
        if !(0..=BULK_MAX).contains(&len) {
            return Err("ERR Protocol error: invalid bulk length");
        }
        let end = data + len as usize;
        match buf.get(end..end + 2) {
            None => return Ok(None),
            Some(b"\r\n") => {}
            Some(_) => return Err("ERR Protocol error: bulk string not followed by CRLF"),
        }
        args.push(data..end);
        pos = end + 2;
    }
    Ok(Some(pos))
}

/// Reads the integer of a `*N\r\n` or `$N\r\n` line whose digits start at `from`: the value and
/// where the next line starts, `None` if the line is not complete yet. `too_big` is the error for
/// a line past [`INLINE_MAX`], `invalid` the one for a line that is not an integer.
fn header(
    buf: &[u8],
    from: usize,
    too_big: &'static str,
    invalid: &'static str,
) -> Result<Option<(i64, usize)>, &'static str> {
    let rest = buf.get(from..).unwrap_or_default();
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return if rest.len() > INLINE_MAX { Err(too_big) } else { Ok(None) };
    };
    let digits = match rest[..nl].strip_suffix(b"\r") {
        Some(d) => d,
        None => return Err("ERR Protocol error: header line not ended by CRLF"),
    };
    match parse_i64(digits) {
        Some(n) => Ok(Some((n, from + nl + 1))),
        None => Err(invalid),
    }
}

/// Parses a decimal `i64` as strictly as redis's `string2ll`: an optional `-`, then digits with
/// no leading zero (except `0` itself), no `+`, no spaces, no `-0`, nothing out of range.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        // Accumulate negatively so that i64::MIN parses.
        v = v.checked_mul(10)?.checked_sub(d)?;
    }
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

/// Appends `+s\r\n`.
pub(crate) fn simple(out: &mut Vec<u8>, s: &str) {
    out.push(b'+');
    out.extend_from_slice(s.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `-msg\r\n`, with any CR or LF in `msg` turned into spaces so the reply stays one line.
pub(crate) fn error(out: &mut Vec<u8>, msg: &[u8]) {
    out.push(b'-');
    out.extend(msg.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
}

/// Appends a bulk string: `$len\r\nbytes\r\n`.
pub(crate) fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    decimal(out, bytes.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends the null bulk string `$-1\r\n` (GET of a missing key).
pub(crate) fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// Appends an integer reply: `:n\r\n`.
pub(crate) fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends an array header `*n\r\n`; the caller appends the `n` elements.
pub(crate) fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    decimal(out, n as i64);
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal, without going through `fmt`.
pub(crate) fn decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(buf: &[u8]) -> (Frame, Vec<&[u8]>) {
        let mut args = Vec::new();
        let frame = parse(buf, &mut args);
        (frame, args.iter().map(|r| &buf[r.clone()]).collect())
    }

    #[test]
    fn array_and_inline_requests() {
        let req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n";
        assert_eq!(
            words(req),
            (Frame::Command { len: req.len() }, vec![&b"SET"[..], b"k", b"va\r\nl"])
        );
        assert_eq!(words(b"PING\r\n"), (Frame::Command { len: 6 }, vec![&b"PING"[..]]));
        assert_eq!(words(b" get\t k \n"), (Frame::Command { len: 9 }, vec![&b"get"[..], b"k"]));
        assert_eq!(words(b"\r\n"), (Frame::Command { len: 2 }, vec![]));
        assert_eq!(words(b"*0\r\n"), (Frame::Command { len: 4 }, vec![]));
        assert_eq!(words(b"*-1\r\n"), (Frame::Command { len: 5 }, vec![]));
        assert_eq!(words(b"*1\r\n$0\r\n\r\n"), (Frame::Command { len: 10 }, vec![&b""[..]]));
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let req = b"*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
        for cut in 0..req.len() {
            assert_eq!(parse(&req[..cut], &mut Vec::new()), Frame::Incomplete, "cut at {cut}");
        }
        assert_eq!(parse(b"PIN", &mut Vec::new()), Frame::Incomplete);
    }

    #[test]
    fn pipelined_requests_are_framed_one_at_a_time() {
        let buf = b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$3\r\nGE";
        let mut args = Vec::new();
        let mut pos = 0;
        let mut seen = Vec::new();
        while let Frame::Command { len } = parse(&buf[pos..], &mut args) {
            seen.push(args.iter().map(|r| buf[pos..][r.clone()].to_vec()).collect::<Vec<_>>());
            pos += len;
        }
        assert_eq!(
            seen,
            vec![
                vec![b"PING".to_vec()],
                vec![b"PING".to_vec()],
                vec![b"GET".to_vec(), b"k".to_vec()]
            ]
        );
        assert_eq!(&buf[pos..], b"*1\r\n$3\r\nGE");
    }

    #[test]
    fn malformed_requests_are_errors() {
        let bad: [&[u8]; 9] = [
            b"*x\r\n",
            b"*01\r\n",
            b"*2000000\r\n",
            b"*1\r\n:1\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$99999999999\r\n",
            b"*1\r\n$3\r\nGETX\r\n",
            b"*1\n",
            b"*1\r\n$+3\r\nGET\r\n",
        ];
        for b in bad {
            assert!(
                matches!(parse(b, &mut Vec::new()), Frame::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        let long = vec![b'a'; INLINE_MAX + 1];
        assert!(matches!(parse(&long, &mut Vec::new()), Frame::Invalid(_)));
        let mut long = b"*1\r\n$".to_vec();
        long.resize(INLINE_MAX + 10, b'1');
        assert!(matches!(parse(&long, &mut Vec::new()), Frame::Invalid(_)));
    }

    #[test]
    fn integers_parse_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in
            [&b""[..], b"-", b"-0", b"007", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1a"]
        {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn replies_encode() {
        let mut out = Vec::new();
        simple(&mut out, "OK");
        error(&mut out, b"ERR bad\r\nthing");
        bulk(&mut out, b"v");
        null(&mut out);
        integer(&mut out, -12);
        array(&mut out, 0);
        decimal(&mut out, i64::MIN);
        assert_eq!(
            out,
            b"+OK\r\n-ERR bad  thing\r\n$1\r\nv\r\n$-1\r\n:-12\r\n*0\r\n-9223372036854775808"
        );
    }
}
