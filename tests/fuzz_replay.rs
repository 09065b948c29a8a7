//! Replays every fuzz corpus file and every crash reproducer through the fuzz targets' logic,
//! so `cargo test` covers them on a stable toolchain. The targets live in `fuzz/` (nightly,
//! cargo-fuzz); their logic lives in `tests/fuzz_logic/`, shared with this test.

#[path = "fuzz_logic/chan_ops.rs"]
mod chan_ops;
#[path = "fuzz_logic/lisp_eval.rs"]
mod lisp_eval;
#[path = "fuzz_logic/region_ops.rs"]
mod region_ops;
#[path = "fuzz_logic/sched_cancel.rs"]
mod sched_cancel;
#[path = "fuzz_logic/timer_ops.rs"]
mod timer_ops;

use std::path::Path;

/// Runs `f` on every file of `fuzz/corpus/<target>` and `fuzz/artifacts/<target>`; returns how
/// many corpus files there were.
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut corpus = 0;
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).unwrap();
            eprintln!("replaying {}", path.display());
            // A reproducer that fails shows its path above its panic.
            f(&bytes);
            if dir == "corpus" {
                corpus += 1;
            }
        }
    }
    corpus
}

#[test]
fn chan_ops_corpus_replays() {
    assert!(replay("chan_ops", chan_ops::fuzz) >= 3, "the corpus has its seeds");
}

#[test]
fn lisp_eval_corpus_replays() {
    assert!(replay("lisp_eval", lisp_eval::fuzz) >= 5, "the corpus has its seeds");
}

#[test]
fn region_ops_corpus_replays() {
    assert!(replay("region_ops", region_ops::fuzz) >= 5, "the corpus has its seeds");
}

#[test]
fn sched_cancel_corpus_replays() {
    assert!(replay("sched_cancel", sched_cancel::fuzz) >= 3, "the corpus has its seeds");
}

#[test]
fn timer_ops_corpus_replays() {
    assert!(replay("timer_ops", timer_ops::fuzz) >= 3, "the corpus has its seeds");
}

/// The decoded scripts print (for reading a reproducer), whatever the bytes.
#[test]
fn scripts_describe_any_bytes() {
    for bytes in [&b""[..], b"\x00\x01\x02\x03", &[0xff; 64]] {
        chan_ops::describe(bytes);
        sched_cancel::describe(bytes);
        timer_ops::describe(bytes);
    }
}
