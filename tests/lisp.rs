//! The OmniLisp language tests: each `tests/lisp/NAME.olisp` runs in a fresh interpreter, and
//! what it prints (then `error: ...` if it stops on an error) must equal `NAME.out` beside it.
//! `OMNI_BLESS=1 cargo test --test lisp` rewrites the `.out` files that differ from what the
//! programs print, naming each, so the change can be read in `git diff` before it is kept.
//!
//! A program runs under a frame limit of 200,000 unless its leading comment lines say
//! otherwise with a header such as `; limits: fuel=10000 frames=64 heap=50000` (any subset of
//! the three; `fuel` is machine steps, `frames` continuation frames, `heap` live heap objects).

use omni::lisp::{Interp, Limits};
use std::path::Path;

/// The limits a program asks for in a `; limits: ...` line among its leading comment lines.
fn limits_of(src: &str, name: &str) -> Limits {
    let mut limits = Limits { frames: 200_000, ..Limits::default() };
    let header = src
        .lines()
        .map(str::trim)
        .take_while(|l| l.starts_with(';') || l.is_empty())
        .find_map(|l| l.trim_start_matches(';').trim().strip_prefix("limits:"));
    for setting in header.into_iter().flat_map(str::split_whitespace) {
        let (key, value) = setting
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}: a limit is `key=number`, got `{setting}`"));
        let n: u32 = value
            .parse()
            .unwrap_or_else(|_| panic!("{name}: `{setting}`: the limit must be a number"));
        match key {
            "fuel" => limits.fuel = Some(n.into()),
            "frames" => limits.frames = n,
            "heap" => limits.heap_objects = n as usize,
            _ => panic!("{name}: unknown limit `{key}` (known: fuel, frames, heap)"),
        }
    }
    limits
}

fn run(path: &Path) -> String {
    let src = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    let mut interp = Interp::with_limits(limits_of(&src, &name));
    // `sleep` jumps to the next deadline when every task waits: no test waits on the clock.
    interp.pause_clock(true);
    let r = interp.eval_str(&src, &name);
    let mut out = interp.take_output();
    if let Err(e) = r {
        out.push_str(&format!("error: {e}\n"));
    }
    out
}

#[test]
fn limits_headers_are_read() {
    let l = limits_of("; what it checks\n; limits: fuel=10 heap=20\n(display 1)\n", "t");
    assert_eq!((l.fuel, l.frames, l.heap_objects), (Some(10), 200_000, 20));
    let l = limits_of("; limits: frames=64\n", "t");
    assert_eq!((l.fuel, l.frames, l.heap_objects), (None, 64, usize::MAX));
    // Only the leading comment lines count.
    let l = limits_of("(display 1)\n; limits: frames=64\n", "t");
    assert_eq!(l.frames, 200_000);
}

#[test]
fn every_program_prints_what_its_out_file_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let olisp_in = |dir: &Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "olisp"))
            .collect();
        v.sort();
        v
    };
    let mut paths = olisp_in(&root.join("tests/lisp"));
    // The example programs too, their expected output kept out of `examples/`.
    let examples = olisp_in(&root.join("examples/lisp"));
    let n_examples = examples.len();
    paths.extend(examples);
    let bless = std::env::var_os("OMNI_BLESS").is_some();
    // The programs run on as many threads as there are cores, each thread with a small stack:
    // no program may need the host stack to grow with its recursion.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let outputs: Vec<std::sync::Mutex<Option<String>>> =
        paths.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn_scoped(s, || loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(p) = paths.get(i) else { break };
                    *outputs[i].lock().unwrap() = Some(run(p));
                })
                .unwrap();
        }
    });
    let mut failed = Vec::new();
    for (p, got) in paths.iter().zip(outputs) {
        let got = got.into_inner().unwrap().expect("every program ran");
        let want_path = if p.parent().is_some_and(|d| d.ends_with("examples/lisp")) {
            root.join("tests/lisp/examples").join(p.with_extension("out").file_name().unwrap())
        } else {
            p.with_extension("out")
        };
        let want = std::fs::read_to_string(&want_path).unwrap_or_default();
        if got == want {
            continue;
        }
        if bless {
            eprintln!("blessed {}", want_path.display());
            std::fs::write(&want_path, &got).unwrap();
        } else {
            failed.push(format!("{}:\n--- want\n{want}--- got\n{got}", p.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} programs differ:\n{}",
        failed.len(),
        paths.len(),
        failed.join("\n")
    );
    assert!(paths.len() >= 7 && n_examples >= 4, "the programs are there");
}

#[test]
fn limits_give_lisp_errors() {
    // Tail calls push no frame: 10^5 iterations under a limit of 64 frames.
    let mut i = Interp::with_limits(Limits { frames: 64, ..Limits::default() });
    let src = "(let loop ((i 0)) (if (= i 100000) 'done (loop (+ i 1))))";
    assert_eq!(i.eval_str(src, "tail").unwrap(), "done");
    // Recursion that is not in tail position reaches the limit.
    let e = i.eval_str("(define (f n) (+ 1 (f n))) (f 0)", "deep").unwrap_err();
    assert!(e.to_string().starts_with("deep:1:15: error: frame limit reached (64 frames"), "{e}");
    // Fuel.
    let mut i = Interp::with_limits(Limits { fuel: Some(10_000), ..Limits::default() });
    let e = i.eval_str("(let loop () (loop))", "spin").unwrap_err();
    assert_eq!(e.message, "out of fuel after 10000 steps");
    // The heap cap.
    let mut i = Interp::with_limits(Limits { heap_objects: 50_000, ..Limits::default() });
    let e = i.eval_str("(let loop ((l '())) (loop (cons 1 l)))", "grow").unwrap_err();
    assert!(e.message.contains("heap limit reached (50000 live objects)"), "{e}");
}

#[test]
fn garbage_is_collected_while_a_loop_runs() {
    let mut i = Interp::new();
    let src = "(define (churn n) (if (= n 0) 'ok (begin (list 1 2 3 4 5) (churn (- n 1))))) (churn 200000)";
    assert_eq!(i.eval_str(src, "churn").unwrap(), "ok");
    let s = i.heap_stats();
    assert!(s.collections >= 1 && s.freed > 1_000_000, "{s:?}");
    assert!(s.objects < 250_000, "live objects stay bounded: {s:?}");
}

#[test]
fn deeply_nested_code_is_an_error_not_a_crash() {
    let result = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let mut i = Interp::new();
            let deep = "(+ 1 ".repeat(10_001) + "0" + &")".repeat(10_001);
            let e = i.eval_str(&deep, "deep").unwrap_err().to_string();
            let ok = "(+ 1 ".repeat(9_000) + "0" + &")".repeat(9_000);
            (e, i.eval_str(&ok, "ok").unwrap())
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(result.0.contains("nesting deeper than 10000 levels"), "{}", result.0);
    assert_eq!(result.1, "9000");
}

#[test]
fn any_limits_make_an_interpreter_and_errors_instead_of_panics() {
    for limits in [
        Limits { frames: 0, ..Limits::default() },
        Limits { heap_objects: 0, ..Limits::default() },
        Limits { fuel: Some(0), ..Limits::default() },
    ] {
        let mut i = Interp::with_limits(limits);
        let e = i.eval_str("(+ 1 (car ((lambda () (list 1 2)))))", "tiny").unwrap_err();
        assert!(
            ["frame limit", "heap limit", "out of fuel"].iter().any(|m| e.message.contains(m)),
            "{limits:?}: {e}"
        );
    }
}
