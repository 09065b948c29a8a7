//! The fast path for pure procedures (`src/lisp/fast.rs`) against the machine, on generated
//! programs: every answer, printed output and error must be the same with the fast path on and
//! off.
//!
//! The fast path is off under a fuel limit, so the reference run has one too large to matter.
//! Each program defines procedures `f0`..`f5` from a small grammar of pure code (integers,
//! floats, booleans, lists, variables, `if`, `let`, `and`, `or`, `begin`, the builtins the
//! machine does itself, and calls), where `fi` calls only `fj` with `j < i`, or itself on a
//! smaller counter, so every program ends soon; then calls each on a few arguments. Some procedures
//! print (impure), some get floats or lists (the fast path gives up), some overflow or divide
//! by zero (errors). The generator is a fixed-seed xorshift, so a failure names its program.

use omni::lisp::{Interp, Limits};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const BINARY: &[&str] =
    &["+", "-", "*", "<", ">", "<=", ">=", "=", "quotient", "remainder", "modulo"];
const UNARY: &[&str] = &["car", "cdr", "null?", "pair?", "zero?", "not"];

/// What calls a body may still make, so that every program ends soon: one call of itself on a
/// smaller counter, or at most two calls of earlier procedures, not both.
struct Calls {
    own: bool,
    earlier: u32,
}

/// An expression of procedure `me` (params `a`, `n`), with `lets` let-bound names in scope.
fn expr(r: &mut Rng, me: usize, depth: u32, lets: &[String], c: &mut Calls) -> String {
    let leaf = depth == 0 || r.below(4) == 0;
    if leaf {
        return match r.below(10) {
            0..=2 => format!("{}", r.below(20) as i64 - 5),
            3 => "a".into(),
            4 => "n".into(),
            5 if !lets.is_empty() => lets[r.below(lets.len() as u64) as usize].clone(),
            6 => r.pick(&["1.5", "#t", "#f", "'()", "'(1 2)", "9223372036854775807"]).into(),
            _ => "n".into(),
        };
    }
    let d = depth - 1;
    match r.below(12) {
        0..=2 => {
            format!("({} {} {})", r.pick(BINARY), expr(r, me, d, lets, c), expr(r, me, d, lets, c))
        }
        3 => format!("({} {})", r.pick(UNARY), expr(r, me, d, lets, c)),
        4 => format!(
            "(if {} {} {})",
            expr(r, me, d, lets, c),
            expr(r, me, d, lets, c),
            expr(r, me, d, lets, c)
        ),
        5 => {
            let name = format!("v{}", lets.len());
            let init = expr(r, me, d, lets, c);
            let mut inner = lets.to_vec();
            inner.push(name.clone());
            format!("(let (({name} {init})) {})", expr(r, me, d, &inner, c))
        }
        6 => format!(
            "({} {} {})",
            r.pick(&["and", "or"]),
            expr(r, me, d, lets, c),
            expr(r, me, d, lets, c)
        ),
        7 => format!("(begin {} {})", expr(r, me, d, lets, c), expr(r, me, d, lets, c)),
        8 if me > 0 && c.earlier > 0 => {
            c.earlier -= 1;
            c.own = false;
            let callee = r.below(me as u64);
            // The counter stays small, whatever the expression gives.
            format!(
                "(f{callee} {} (remainder {} 8))",
                expr(r, me, d, lets, c),
                expr(r, me, d, lets, c)
            )
        }
        // A call of itself on a smaller counter, in tail position or not.
        9 | 10 if c.own => {
            c.own = false;
            c.earlier = 0;
            let call = format!("(f{me} {} (- n 1))", expr(r, me, d, lets, c));
            let stop = expr(r, me, d, lets, c);
            if r.below(2) == 0 {
                format!("(if (<= n 0) {stop} {call})")
            } else {
                format!("(if (<= n 0) {stop} (+ 1 {call}))")
            }
        }
        _ => format!("(- {} {})", expr(r, me, d, lets, c), expr(r, me, d, lets, c)),
    }
}

fn program(seed: u64) -> String {
    let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut src = String::new();
    for i in 0..6 {
        let body = expr(&mut r, i, 4, &[], &mut Calls { own: true, earlier: 2 });
        // One procedure in five prints: impure, so the machine runs it.
        let body = if r.below(5) == 0 { format!("(begin (display n) {body})") } else { body };
        src.push_str(&format!("(define (f{i} a n) {body})\n"));
    }
    for i in 0..6 {
        for _ in 0..2 {
            let (a, n) = (r.below(9) as i64 - 2, r.below(16));
            let a = if r.below(6) == 0 { "2.5".to_string() } else { a.to_string() };
            src.push_str(&format!(
                "(write (guard (e (#t (list 'error (error-object-message e)))) (f{i} {a} {n})))\n"
            ));
        }
    }
    src
}

fn run(src: &str, fast: bool) -> String {
    let limits =
        if fast { Limits::default() } else { Limits { fuel: Some(u64::MAX), ..Limits::default() } };
    let mut lisp = Interp::with_limits(limits);
    let r = lisp.eval_str(src, "gen");
    let mut out = lisp.take_output();
    match r {
        Ok(v) => out.push_str(&format!("\n=> {v}")),
        Err(e) => out.push_str(&format!("\nerror: {e}")),
    }
    out
}

#[test]
fn the_fast_path_answers_as_the_machine_does() {
    let (mut done, mut gave_up) = (0, 0);
    for seed in 0..600 {
        let src = program(seed);
        let machine = run(&src, false);
        let fast = run(&src, true);
        assert_eq!(fast, machine, "program {seed} differs:\n{src}");
        let mut lisp = Interp::new();
        let _ = lisp.eval_str(&src, "gen");
        let (d, g) = lisp.fast_calls();
        (done, gave_up) = (done + d, gave_up + g);
    }
    // The generated programs reach the fast path, and give up from it too.
    assert!(done > 2000 && gave_up > 200, "fast path: {done} calls done, {gave_up} gave up");
}
