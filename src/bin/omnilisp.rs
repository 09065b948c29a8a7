//! `omnilisp`: run an OmniLisp program, evaluate an expression, or talk to a REPL.
//!
//! ```text
//! omnilisp FILE        run the program in FILE
//! omnilisp -e EXPR     evaluate EXPR and print its value
//! omnilisp             a REPL: line editing and history, multi-line input, errors shown
//! ```
//!
//! Exit status: 0 on success, 1 on a Lisp error, 2 on bad usage (or a file that cannot be
//! read).

use omni::lisp::{read_all, Interp};
use std::process::ExitCode;

const USAGE: &str = "usage: omnilisp [FILE | -e EXPR | --help]\n\
    \n  omnilisp FILE      run the program in FILE\
    \n  omnilisp -e EXPR   evaluate EXPR and print its value\
    \n  omnilisp           start a REPL (Ctrl-D to leave)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => repl(),
        ["-h" | "--help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        ["-e", expr] => run(expr, "-e", true),
        ["-e"] => usage("`-e` needs an expression"),
        [flag, ..] if flag.starts_with('-') && flag != "-" => {
            usage(&format!("unknown option `{flag}`"))
        }
        [file] => match std::fs::read_to_string(file) {
            Ok(src) => run(&src, file, false),
            Err(e) => {
                eprintln!("omnilisp: cannot read {file}: {e}");
                ExitCode::from(2)
            }
        },
        _ => usage("too many arguments"),
    }
}

fn usage(why: &str) -> ExitCode {
    eprintln!("omnilisp: {why}\n{USAGE}");
    ExitCode::from(2)
}

fn run(src: &str, name: &str, print_value: bool) -> ExitCode {
    let mut lisp = Interp::new();
    lisp.print_to_stdout(true);
    match lisp.eval_str(src, name) {
        Ok(v) => {
            if print_value && !v.is_empty() {
                println!("{v}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => match e.exit_status() {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
            None => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
    }
}

/// Whether `src` is incomplete: a list, string or block comment still open at its end.
fn incomplete(src: &str) -> bool {
    match read_all(src, "repl") {
        Ok(_) => false,
        Err(e) => e.message.contains("never closed"),
    }
}

fn repl() -> ExitCode {
    let mut lisp = Interp::new();
    lisp.print_to_stdout(true);
    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(ed) => ed,
        Err(e) => {
            eprintln!("omnilisp: cannot start the line editor: {e}");
            return ExitCode::from(2);
        }
    };
    let history =
        std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".omnilisp_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let mut pending = String::new();
    let mut entry = 0u32;
    loop {
        let prompt = if pending.is_empty() { "> " } else { ". " };
        match editor.readline(prompt) {
            Ok(line) => {
                pending.push_str(&line);
                pending.push('\n');
                if incomplete(&pending) {
                    continue;
                }
                let src = std::mem::take(&mut pending);
                if src.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(src.trim_end());
                entry += 1;
                match lisp.eval_str(&src, &format!("repl-{entry}")) {
                    Ok(v) if v.is_empty() => {}
                    Ok(v) => println!("{v}"),
                    Err(e) => match e.exit_status() {
                        Some(code) => {
                            if let Some(h) = &history {
                                let _ = editor.save_history(h);
                            }
                            return ExitCode::from(u8::try_from(code).unwrap_or(255));
                        }
                        None => eprintln!("{e}"),
                    },
                }
            }
            Err(rustyline::error::ReadlineError::Interrupted) => pending.clear(),
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("omnilisp: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    ExitCode::SUCCESS
}
