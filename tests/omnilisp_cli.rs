//! The `omnilisp` command: files, `-e`, the REPL on piped input, and exit statuses.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn omnilisp(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_omnilisp"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("HOME", std::env::temp_dir()) // the REPL's history file goes there
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn runs_a_file_and_exits_0_or_1() {
    let dir = std::env::temp_dir().join(format!("omnilisp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ok = dir.join("ok.olisp");
    std::fs::write(&ok, "(define (sq x) (* x x))\n(display (sq 12))\n(newline)\n").unwrap();
    let out = omnilisp(&[ok.to_str().unwrap()], "");
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(0), "144\n".to_string()));
    let bad = dir.join("bad.olisp");
    std::fs::write(&bad, "(display 1)\n(newline)\n(undefined-thing)\n").unwrap();
    let out = omnilisp(&[bad.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "1\n", "output before the error is kept");
    assert!(
        text(&out.stderr).contains("bad.olisp:3:2: error: unbound variable `undefined-thing`"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn evaluates_an_expression() {
    let out = omnilisp(&["-e", "(map (lambda (x) (* x x)) '(1 2 3))"], "");
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(0), "(1 4 9)\n".to_string()));
    let out = omnilisp(&["-e", "(prompt 'p (+ 1 (control 'p k (k (k 2)))))"], "");
    assert_eq!(text(&out.stdout), "4\n");
    let out = omnilisp(&["-e", "(car 1)"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("-e:1:1: error: car: expects a pair"));
}

#[test]
fn bad_usage_exits_2_with_the_usage() {
    for args in [&["--bogus"][..], &["-e"], &["a", "b"], &["/no/such/file.olisp"]] {
        let out = omnilisp(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!text(&out.stderr).is_empty(), "{args:?} says why");
    }
    let out = omnilisp(&["--help"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("usage: omnilisp"));
}

#[test]
fn the_repl_reads_multi_line_input_and_survives_errors() {
    let out = omnilisp(&[], "(define x 2)\n(+ x\n   3)\n(car 1)\n(* x 10)\n\"a\n b\"\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "5\n20\n\"a\\n b\"\n");
    assert!(text(&out.stderr).contains("error: car: expects a pair, got 1"));
}

#[test]
fn exit_sets_the_status_and_keeps_what_was_printed() {
    let out =
        omnilisp(&["-e", "(display \"bye\") (newline) (exit 3) (display \"not reached\")"], "");
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(3), "bye\n".to_string()));
    assert!(out.stderr.is_empty(), "exit is not an error: {}", text(&out.stderr));
    let out = omnilisp(&["-e", "(exit)"], "");
    assert_eq!(out.status.code(), Some(0));
    let out = omnilisp(&["-e", "(exit #f)"], "");
    assert_eq!(out.status.code(), Some(1));
    // In the REPL too, after what came before it.
    let out = omnilisp(&[], "(display 7)\n(exit 4)\n(display 8)\n");
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stdout).contains('7') && !text(&out.stdout).contains('8'));
}
