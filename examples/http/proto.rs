//! HTTP/1.1 request framing for the `hello` server, shared by `examples/http.rs` and its tokio
//! twin `benches/http_tokio.rs` so that both do byte for byte the same work.
//!
//! [`serve`] answers every whole request at the front of the input with `hello` and appends the
//! responses to one output buffer, so pipelined requests cost one read and one write. It reads
//! only what framing needs: the request line, `Connection`, `Content-Length` (a body is skipped)
//! and `Transfer-Encoding` (refused with 501: a chunked body cannot be skipped without decoding
//! it). Connections persist as HTTP/1.1 says: an HTTP/1.1 request keeps the connection open
//! unless it says `Connection: close`, an HTTP/1.0 one closes it unless it says
//! `Connection: keep-alive`. Malformed requests get a 4xx or 5xx response and the connection
//! closes; nothing here panics on any input.

/// Largest request head (request line and headers) accepted; past it the answer is 431.
const HEAD_MAX: usize = 16 * 1024;
/// Most header fields in one request.
const HEADERS_MAX: usize = 100;
/// Largest request body skipped; past it the answer is 413.
const BODY_MAX: u64 = 1024 * 1024;

/// The whole response to a request that keeps the connection open.
const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

/// What one call of [`serve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Served {
    /// Bytes of input taken by whole requests; the rest is the start of an incomplete one.
    pub(crate) consumed: usize,
    /// Whether to close the connection once the output is written.
    pub(crate) close: bool,
}

/// A request head and body, framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    /// Bytes of head and body.
    len: usize,
    /// The connection ends after the response.
    close: bool,
    /// HTTP/1.0 with `Connection: keep-alive`: the response must say so too.
    keep_alive_10: bool,
    /// A `HEAD` request: the response has no body.
    head: bool,
}

/// What [`frame`] found at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Request(Request),
    Incomplete,
    /// Malformed or unsupported: the status line to answer with before closing.
    Invalid(&'static str),
}

/// Answers every whole request at the front of `input`, appending the responses to `out`.
pub(crate) fn serve(input: &[u8], out: &mut Vec<u8>) -> Served {
    let mut pos = 0;
    loop {
        match frame(&input[pos..]) {
            Frame::Incomplete => return Served { consumed: pos, close: false },
            Frame::Invalid(status) => {
                out.extend_from_slice(status.as_bytes());
                out.extend_from_slice(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                return Served { consumed: input.len(), close: true };
            }
            Frame::Request(req) => {
                pos += req.len;
                respond(&req, out);
                if req.close {
                    return Served { consumed: pos, close: true };
                }
            }
        }
    }
}

fn respond(req: &Request, out: &mut Vec<u8>) {
    let (head, body) = HELLO.split_at(HELLO.len() - 5);
    if req.close || req.keep_alive_10 {
        out.extend_from_slice(&head[..head.len() - 2]);
        let connection: &[u8] = if req.close { b"close" } else { b"keep-alive" };
        out.extend_from_slice(b"Connection: ");
        out.extend_from_slice(connection);
        out.extend_from_slice(b"\r\n\r\n");
    } else {
        out.extend_from_slice(head);
    }
    if !req.head {
        out.extend_from_slice(body);
    }
}

/// Splits off the line at the front of `buf`: the line without its `\n` (or `\r\n`) and the
/// bytes it took, or `None` if no `\n` came yet.
fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let line = &buf[..nl];
    Some((line.strip_suffix(b"\r").unwrap_or(line), nl + 1))
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn frame(buf: &[u8]) -> Frame {
    let mut pos = 0;
    // A server SHOULD ignore empty lines before a request line (RFC 9112, 2.2).
    let request_line = loop {
        match line(&buf[pos..]) {
            None => return incomplete(buf),
            Some((l, used)) if l.is_empty() && pos < 8 => pos += used,
            Some((l, used)) => {
                pos += used;
                break l;
            }
        }
    };
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Frame::Invalid("HTTP/1.1 400 Bad Request");
    };
    if !is_token(method) || target.is_empty() || target.iter().any(u8::is_ascii_control) {
        return Frame::Invalid("HTTP/1.1 400 Bad Request");
    }
    let http11 = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        v if v.starts_with(b"HTTP/") => {
            return Frame::Invalid("HTTP/1.1 505 HTTP Version Not Supported")
        }
        _ => return Frame::Invalid("HTTP/1.1 400 Bad Request"),
    };
    let (mut close_token, mut keep_alive_token) = (false, false);
    let mut content_length: Option<u64> = None;
    let mut fields = 0;
    loop {
        let Some((l, used)) = line(&buf[pos..]) else { return incomplete(buf) };
        pos += used;
        if l.is_empty() {
            break;
        }
        fields += 1;
        if fields > HEADERS_MAX || pos > HEAD_MAX {
            return Frame::Invalid("HTTP/1.1 431 Request Header Fields Too Large");
        }
        let Some(colon) = l.iter().position(|&b| b == b':') else {
            return Frame::Invalid("HTTP/1.1 400 Bad Request");
        };
        let (name, value) = (&l[..colon], l[colon + 1..].trim_ascii());
        if !is_token(name) || value.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
            return Frame::Invalid("HTTP/1.1 400 Bad Request");
        }
        if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close_token |= option.eq_ignore_ascii_case(b"close");
                keep_alive_token |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = match std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok()) {
                Some(n) if value.iter().all(u8::is_ascii_digit) => n,
                _ => return Frame::Invalid("HTTP/1.1 400 Bad Request"),
            };
            if content_length.is_some_and(|old| old != n) {
                return Frame::Invalid("HTTP/1.1 400 Bad Request");
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Frame::Invalid("HTTP/1.1 501 Not Implemented");
        }
    }
    let body = content_length.unwrap_or(0);
    if body > BODY_MAX {
        return Frame::Invalid("HTTP/1.1 413 Content Too Large");
    }
    let len = pos + body as usize;
    if buf.len() < len {
        return Frame::Incomplete;
    }
    let close = close_token || (!http11 && !keep_alive_token);
    Frame::Request(Request {
        len,
        close,
        keep_alive_10: !http11 && !close,
        head: method == b"HEAD",
    })
}

/// No whole head yet: wait for more, unless the head is already too long.
fn incomplete(buf: &[u8]) -> Frame {
    if buf.len() > HEAD_MAX {
        Frame::Invalid("HTTP/1.1 431 Request Header Fields Too Large")
    } else {
        Frame::Incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_str(input: &str) -> (Served, String) {
        let mut out = Vec::new();
        let served = serve(input.as_bytes(), &mut out);
        (served, String::from_utf8(out).unwrap())
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    const OK_CLOSE: &str = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

    #[test]
    fn keep_alive_and_pipelining() {
        let req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let input = format!("{req}{req}{req}GET / HT");
        let (served, out) = serve_str(&input);
        assert_eq!(out, OK.repeat(3));
        assert_eq!(served, Served { consumed: 3 * req.len(), close: false });
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let req = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        for cut in 0..req.len() {
            assert_eq!(frame(&req[..cut]), Frame::Incomplete, "cut at {cut}");
        }
        let mut out = Vec::new();
        assert_eq!(serve(req, &mut out), Served { consumed: req.len(), close: false });
    }

    #[test]
    fn connection_close_and_http10() {
        let (served, out) =
            serve_str("GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!((served.close, out.as_str()), (true, OK_CLOSE));
        let (served, out) = serve_str("GET / HTTP/1.0\r\n\r\n");
        assert_eq!((served.close, out.as_str()), (true, OK_CLOSE));
        let (served, out) = serve_str("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n");
        assert!(!served.close);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
        );
        let (_, out) = serve_str("HEAD / HTTP/1.1\n\n");
        assert_eq!(out, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    }

    #[test]
    fn bad_requests_get_an_error_and_close() {
        let cases = [
            ("GET /\r\n\r\n", "400"),
            ("GET  / HTTP/1.1\r\n\r\n", "400"),
            ("GET / HTTP/2.0\r\n\r\n", "505"),
            ("G\x01T / HTTP/1.1\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nNo colon\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nBad name: x\r\n\r\n", "400"),
            ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400"),
            ("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"),
            ("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", "400"),
            ("POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", "413"),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "501"),
        ];
        for (input, status) in cases {
            let (served, out) = serve_str(input);
            assert!(served.close, "{input:?}");
            assert!(out.starts_with(&format!("HTTP/1.1 {status} ")), "{input:?} gave {out:?}");
            assert!(out.ends_with("Connection: close\r\n\r\n"), "{out:?}");
        }
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(HEAD_MAX));
        assert!(serve_str(&huge).1.starts_with("HTTP/1.1 431 "));
        assert!(serve_str(&"a".repeat(HEAD_MAX + 1)).1.starts_with("HTTP/1.1 431 "));
    }
}
