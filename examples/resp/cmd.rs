//! The commands of the RESP example server and the store they work on, shared by
//! `examples/resp.rs` and its tokio twin `benches/resp_tokio.rs`: the servers differ only in the
//! runtime that moves the bytes.
//!
//! [`Session::serve`] runs every complete request at the front of the input and appends every
//! reply to one output buffer, so a pipelined batch costs one read and one write. The commands:
//! `PING [msg]`, `GET`, `SET key value`, `DEL key...`, `INCR`, `QUIT`, and just enough of
//! `COMMAND` and `CONFIG GET` for `redis-cli` and `redis-benchmark` to start. Errors read as
//! redis's own.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

#[path = "proto.rs"]
mod proto;

use proto::Frame;

/// Shards of the store: keys spread over this many locks.
const SHARDS: usize = 16;

type Map = HashMap<Vec<u8>, Vec<u8>>;

/// The key-value store: [`SHARDS`] mutex-guarded maps, a key's shard chosen by its FNV-1a hash.
#[derive(Debug)]
pub(crate) struct Store {
    shards: Box<[Mutex<Map>]>,
}

impl Store {
    /// An empty store.
    pub(crate) fn new() -> Store {
        Store { shards: (0..SHARDS).map(|_| Mutex::new(Map::new())).collect() }
    }

    /// The locked shard that holds `key`. No command panics while holding it, so a poisoned lock
    /// (impossible here) would still hold consistent data and is taken as is.
    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Map> {
        let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let shard = &self.shards[(hash % SHARDS as u64) as usize];
        shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What one call of [`Session::serve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Served {
    /// Bytes of input taken by whole requests; the rest is the start of an incomplete one.
    pub(crate) consumed: usize,
    /// Whether to close the connection once the output is written (`QUIT`, a protocol error).
    pub(crate) close: bool,
}

/// One connection's scratch state.
#[derive(Debug, Default)]
pub(crate) struct Session {
    args: Vec<Range<usize>>,
}

impl Session {
    /// Runs every whole request at the front of `input` against `store`, appending the replies to
    /// `out`. Never panics: a malformed request gets an error reply and `close`.
    pub(crate) fn serve(&mut self, input: &[u8], out: &mut Vec<u8>, store: &Store) -> Served {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match proto::parse(rest, &mut self.args) {
                Frame::Incomplete => return Served { consumed: pos, close: false },
                Frame::Invalid(msg) => {
                    proto::error(out, msg.as_bytes());
                    return Served { consumed: input.len(), close: true };
                }
                Frame::Command { len } => {
                    pos += len;
                    let args: Args<'_> = Args { buf: rest, ranges: &self.args };
                    if !self.args.is_empty() && run(&args, out, store) == Flow::Close {
                        return Served { consumed: pos, close: true };
                    }
                }
            }
        }
    }
}

/// The arguments of one request, borrowed from the input.
struct Args<'a> {
    buf: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    fn len(&self) -> usize {
        self.ranges.len()
    }

    fn get(&self, i: usize) -> &'a [u8] {
        &self.buf[self.ranges[i].clone()]
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

fn run(args: &Args<'_>, out: &mut Vec<u8>, store: &Store) -> Flow {
    let name = args.get(0);
    let mut upper = [0u8; 8];
    let upper = match upper.get_mut(..name.len()) {
        Some(u) => {
            u.copy_from_slice(name);
            u.make_ascii_uppercase();
            &u[..]
        }
        None => &b"?"[..], // longer than any command we know
    };
    let argc = args.len();
    let arity_ok = match upper {
        b"PING" => argc <= 2,
        b"GET" | b"INCR" => argc == 2,
        b"SET" => argc >= 3,
        b"DEL" | b"CONFIG" => argc >= 2,
        b"COMMAND" => true,
        b"QUIT" => argc == 1,
        _ => {
            unknown(out, name);
            return Flow::Continue;
        }
    };
    if !arity_ok {
        let mut msg = b"ERR wrong number of arguments for '".to_vec();
        msg.extend(name.iter().map(u8::to_ascii_lowercase));
        msg.extend_from_slice(b"' command");
        proto::error(out, &msg);
        return Flow::Continue;
    }
    match upper {
        b"PING" if argc == 2 => proto::bulk(out, args.get(1)),
        b"PING" => proto::simple(out, "PONG"),
        b"GET" => match store.shard(args.get(1)).get(args.get(1)) {
            Some(v) => proto::bulk(out, v),
            None => proto::null(out),
        },
        b"SET" if argc > 3 => proto::error(out, b"ERR syntax error"),
        b"SET" => {
            let (key, value) = (args.get(1), args.get(2));
            let mut map = store.shard(key);
            match map.get_mut(key) {
                Some(v) => {
                    v.clear();
                    v.extend_from_slice(value);
                }
                None => {
                    map.insert(key.to_vec(), value.to_vec());
                }
            }
            proto::simple(out, "OK");
        }
        b"DEL" => {
            let gone =
                (1..argc).filter(|&i| store.shard(args.get(i)).remove(args.get(i)).is_some());
            proto::integer(out, gone.count() as i64);
        }
        b"INCR" => incr(args.get(1), out, store),
        b"COMMAND" => command(args, out),
        b"CONFIG" => config(args, out),
        _ => {
            proto::simple(out, "OK"); // QUIT
            return Flow::Close;
        }
    }
    Flow::Continue
}

fn incr(key: &[u8], out: &mut Vec<u8>, store: &Store) {
    let mut map = store.shard(key);
    let old = match map.get(key) {
        None => Some(0),
        Some(v) => proto::parse_i64(v),
    };
    let Some(old) = old else {
        return proto::error(out, b"ERR value is not an integer or out of range");
    };
    let Some(new) = old.checked_add(1) else {
        return proto::error(out, b"ERR increment or decrement would overflow");
    };
    let value = map.entry(key.to_vec()).or_default();
    value.clear();
    proto::decimal(value, new);
    proto::integer(out, new);
}

/// `COMMAND`: an empty list (redis-cli only uses it for hints), `COMMAND COUNT` the number we
/// know.
fn command(args: &Args<'_>, out: &mut Vec<u8>) {
    if args.len() == 2 && args.get(1).eq_ignore_ascii_case(b"COUNT") {
        proto::integer(out, 8);
    } else {
        proto::array(out, 0);
    }
}

/// `CONFIG GET param...`: `save` and `appendonly` (what redis-benchmark asks for) answer as a
/// server without persistence would; other parameters are left out of the reply, as redis does
/// for unknown ones.
fn config(args: &Args<'_>, out: &mut Vec<u8>) {
    if !args.get(1).eq_ignore_ascii_case(b"GET") || args.len() < 3 {
        return proto::error(out, b"ERR only CONFIG GET parameter... is supported");
    }
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    for i in 2..args.len() {
        let param = args.get(i);
        if param.eq_ignore_ascii_case(b"save") {
            pairs.push((b"save", b""));
        } else if param.eq_ignore_ascii_case(b"appendonly") {
            pairs.push((b"appendonly", b"no"));
        }
    }
    proto::array(out, 2 * pairs.len());
    for (name, value) in pairs {
        proto::bulk(out, name);
        proto::bulk(out, value);
    }
}

fn unknown(out: &mut Vec<u8>, name: &[u8]) {
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(&name[..name.len().min(128)]);
    msg.extend_from_slice(b"'");
    proto::error(out, &msg);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(store: &Store, input: &[u8]) -> (Served, String) {
        let mut out = Vec::new();
        let served = Session::default().serve(input, &mut out, store);
        (served, String::from_utf8(out).unwrap())
    }

    #[test]
    fn pipelined_commands_reply_in_order() {
        let store = Store::new();
        let input =
            b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nget\r\n$1\r\nk\r\n\
                      *2\r\n$3\r\nGET\r\n$1\r\nz\r\nPING hi\r\nDEL k z\r\n*2\r\n$3\r\nGE";
        let (served, out) = serve(&store, input);
        assert_eq!(out, "+PONG\r\n+OK\r\n$1\r\nv\r\n$-1\r\n$2\r\nhi\r\n:1\r\n");
        assert_eq!(
            served,
            Served { consumed: input.len() - b"*2\r\n$3\r\nGE".len(), close: false }
        );
    }

    #[test]
    fn incr_counts_and_refuses_non_integers() {
        let store = Store::new();
        let (_, out) = serve(&store, b"INCR n\r\nINCR n\r\nSET s x\r\nINCR s\r\nGET n\r\n");
        assert_eq!(
            out,
            ":1\r\n:2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\n2\r\n"
        );
        let (_, out) = serve(&store, b"SET m 9223372036854775807\r\nINCR m\r\n");
        assert_eq!(out, "+OK\r\n-ERR increment or decrement would overflow\r\n");
    }

    #[test]
    fn bad_input_gets_an_error_reply_not_a_panic() {
        let store = Store::new();
        let (_, out) = serve(&store, b"GET\r\nSET a b c\r\nFLUSHALL\r\nQUITTING\r\n");
        assert_eq!(
            out,
            "-ERR wrong number of arguments for 'get' command\r\n-ERR syntax error\r\n\
             -ERR unknown command 'FLUSHALL'\r\n-ERR unknown command 'QUITTING'\r\n"
        );
        let (served, out) = serve(&store, b"PING\r\n*1\r\n$x\r\nPING\r\n");
        assert_eq!(out, "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
        assert!(served.close);
        let (served, out) = serve(&store, b"QUIT\r\nPING\r\n");
        assert_eq!((served, out.as_str()), (Served { consumed: 6, close: true }, "+OK\r\n"));
    }

    #[test]
    fn tool_handshakes_are_answered() {
        let store = Store::new();
        let (_, out) = serve(
            &store,
            b"CONFIG GET save\r\nCONFIG GET appendonly\r\nCOMMAND DOCS\r\nCOMMAND COUNT\r\n",
        );
        assert_eq!(
            out,
            "*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n*0\r\n:8\r\n"
        );
    }
}
