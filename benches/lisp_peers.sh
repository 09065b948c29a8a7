#!/usr/bin/env bash
# OmniLisp beside two mature Schemes, Guile 3 and Racket, on the same four small programs
# (benches/lisp/NAME.olisp, NAME.scm, NAME.rkt):
#
#   fib      (fib 30), naive and doubly recursive: non-tail calls, integer arithmetic
#   tail     a named-let loop of 10^7 iterations: tail calls
#   list     builds a 10^6-element list with cons, then sums it: allocation, car/cdr
#   control  10^5 times (prompt 'p (+ 1 (control 'p k (k i)))), summed: capture and resume
#            of delimited continuations (how Guile and Racket spell prompt/control is in the
#            comments of control.scm and control.rkt)
#
# Prints one markdown table: the median wall time of each program under each implementation
# and the ratios omnilisp / guile and omnilisp / racket (above 1 OmniLisp is slower), then
# each implementation's startup time (the median for an empty program, benches/lisp/empty.*).
# Nothing is subtracted: a program's time includes its implementation's startup.
#
#   bash benches/lisp_peers.sh           the full sizes
#   bash benches/lisp_peers.sh --quick   scaled-down sizes (fib 20, 10^5, 10^4, 10^3): a smoke test
#
# Environment:
#   LISP_BENCH_RUNS     timed runs per program and implementation (default 3); the median is shown
#   LISP_BENCH_TIMEOUT  seconds one run may take before it is killed (default 300)
#   CARGO_TARGET_DIR    honoured: the omnilisp binary is found where cargo put it
#   LISP_BENCH_OMNILISP a prebuilt omnilisp binary to time instead (no cargo build)
#
# How each is run:
#   omnilisp  `cargo build --release --bin omnilisp` first, then `omnilisp FILE`.
#   guile     `guile FILE`. Guile compiles a file the first time it runs it and caches the
#             result, so each program gets one untimed warm-up run first (it compiles); the
#             timed runs load the compiled code. The cache is kept in a temporary directory
#             (XDG_CACHE_HOME), so nothing stale is used and ~/.cache is left alone.
#   racket    `raco make FILE` first (untimed: compilation to machine code), one untimed
#             warm-up run, then `racket FILE`, which loads the compiled module.
# Every run's output must be the same for the three; a program whose outputs differ, or a run
# that fails or times out, is marked in the table and the script exits with status 1. A peer
# that is not installed is skipped (its columns show "-"), with a line saying so.
#
# The programs are written the same way in the three languages (the same definitions, the
# same loops), not each in its fastest idiom. Guile runs a file's top level as a script
# (top-level definitions stay mutable variables), Racket compiles the file as a module.
# The machinery is shared with benches/lisp_tasks_peers.sh: benches/lisp_common.sh.
set -euo pipefail

BENCH_NAME=lisp_peers
PROGRAMS=(fib tail list control)
IMPLS=(omnilisp guile racket)
declare -A QUICK_N=([fib]=20 [tail]=100000 [list]=10000 [control]=1000)

# shellcheck source-path=SCRIPTDIR source=lisp_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lisp_common.sh"
lisp_bench_main "$@"
