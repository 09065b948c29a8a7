//! Command-line flags shared by the example servers (`echo`, `resp`, `http`) and their tokio
//! twins in `benches/`, parsed by hand so the examples need nothing beyond omni.
//!
//! ```text
//! --addr HOST:PORT        where to listen (each server has its own default; port 0 picks a free one)
//! --driver auto|mio|io_uring   omni's I/O driver (the tokio twins check it and ignore it)
//! --workers N             1: a current-thread runtime; N > 1: a multi-thread runtime with N workers
//! ```
//!
//! Each flag takes its value as the next argument or after `=` (`--workers=2`). A server's start
//! line always says `listening on ADDR`, with the bound address, so a script that passes port 0
//! learns the port from it.

use std::fmt::Write as _;

/// The parsed flags of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flags {
    /// The address to bind, as given (resolved when binding).
    pub(crate) addr: String,
    /// The I/O driver omni should use.
    pub(crate) driver: omni::Driver,
    /// Worker threads: 1 means a current-thread runtime.
    pub(crate) workers: usize,
}

impl Flags {
    /// Parses `args` (the process arguments without the program name), or prints the usage to
    /// stderr and exits with status 2 on a bad flag (status 0 and stdout for `--help`).
    pub(crate) fn from_args_or_exit(
        program: &str,
        default_addr: &str,
        args: impl IntoIterator<Item = String>,
    ) -> Flags {
        match Flags::parse(args, default_addr) {
            Ok(Some(flags)) => flags,
            Ok(None) => {
                print!("{}", usage(program, default_addr));
                std::process::exit(0);
            }
            Err(e) => {
                eprint!("{program}: {e}\n\n{}", usage(program, default_addr));
                std::process::exit(2);
            }
        }
    }

    /// Parses `args` (without the program name): `Ok(None)` for `--help`.
    ///
    /// # Errors
    ///
    /// A message naming the unknown flag, the missing value or the bad value.
    pub(crate) fn parse(
        args: impl IntoIterator<Item = String>,
        default_addr: &str,
    ) -> Result<Option<Flags>, String> {
        let mut flags =
            Flags { addr: default_addr.to_owned(), driver: omni::Driver::Auto, workers: 1 };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Ok(None);
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            if !matches!(name.as_str(), "--addr" | "--driver" | "--workers") {
                return Err(format!("unknown flag {name:?}"));
            }
            let value = match inline.or_else(|| args.next()) {
                Some(v) => v,
                None => return Err(format!("{name} needs a value")),
            };
            match name.as_str() {
                "--addr" => flags.addr = value,
                "--driver" => flags.driver = value.parse().map_err(|e| format!("--driver: {e}"))?,
                _ => {
                    flags.workers = match value.parse::<usize>() {
                        Ok(n) if (1..=65_535).contains(&n) => n,
                        _ => return Err(format!("--workers wants 1 to 65535, got {value:?}")),
                    }
                }
            }
        }
        Ok(Some(flags))
    }

    /// `1 worker (current-thread)` or `N workers (multi-thread)`, for start lines.
    pub(crate) fn workers_text(&self) -> String {
        match self.workers {
            1 => "1 worker (current-thread)".to_owned(),
            n => format!("{n} workers (multi-thread)"),
        }
    }
}

fn usage(program: &str, default_addr: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "usage: {program} [--addr HOST:PORT] [--driver auto|mio|io_uring] [--workers N]"
    );
    let _ =
        writeln!(s, "  --addr     address to listen on (default {default_addr}; port 0 picks one)");
    let _ = writeln!(s, "  --driver   omni I/O driver: auto, mio or io_uring (default auto)");
    let _ = writeln!(
        s,
        "  --workers  1 = current-thread runtime, N > 1 = N worker threads (default 1)"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Flags>, String> {
        Flags::parse(args.iter().map(|s| s.to_string()), "127.0.0.1:1")
    }

    #[test]
    fn defaults_and_both_value_forms() {
        let f = parse(&[]).unwrap().unwrap();
        assert_eq!(f, Flags { addr: "127.0.0.1:1".into(), driver: omni::Driver::Auto, workers: 1 });
        let f =
            parse(&["--addr", "0.0.0.0:9", "--driver=uring", "--workers", "2"]).unwrap().unwrap();
        assert_eq!(
            f,
            Flags { addr: "0.0.0.0:9".into(), driver: omni::Driver::IoUring, workers: 2 }
        );
        assert_eq!(parse(&["--help"]), Ok(None));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&["--port", "1"]).unwrap_err().contains("unknown flag"));
        assert!(parse(&["--workers"]).unwrap_err().contains("needs a value"));
        assert!(parse(&["--workers", "0"]).is_err());
        assert!(parse(&["--workers=x"]).is_err());
        assert!(parse(&["--driver", "kqueue"]).unwrap_err().contains("--driver"));
    }
}
