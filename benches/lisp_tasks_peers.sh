#!/usr/bin/env bash
# OmniLisp's green tasks, channels and generators beside Racket's threads, channels and
# generators (issue 9's speed acceptance), on three small programs (benches/lisp/NAME.olisp,
# NAME.rkt):
#
#   spawn     spawns 10^5 tasks, task i returning i, keeping the handles, then joins each in
#             turn and sums the results: task creation, scheduling, join
#   pingpong  10^5 round trips between two tasks over two unbuffered channels (the main
#             program sends i, a spawned task answers i + 1, the main program sums): 2 * 10^5
#             rendezvous, each a task switch
#   genitems  a generator yielding 0 .. 10^5 - 1, summed with gen-fold: 10^5 suspensions and
#             resumptions of the producer
#
# Prints one markdown table: the median wall time of each program under each implementation
# and the ratio omnilisp / racket (above 1 OmniLisp is slower), then each implementation's
# startup time (the median for an empty program, benches/lisp/empty.*). Nothing is subtracted:
# a program's time includes its implementation's startup.
#
#   bash benches/lisp_tasks_peers.sh           the full sizes (n = 10^5)
#   bash benches/lisp_tasks_peers.sh --quick   n = 10^3 for each: a smoke test
#
# Environment:
#   LISP_BENCH_RUNS     timed runs per program and implementation (default 3); the median is shown
#   LISP_BENCH_TIMEOUT  seconds one run may take before it is killed (default 300)
#   CARGO_TARGET_DIR    honoured: the omnilisp binary is found where cargo put it
#   LISP_BENCH_OMNILISP a prebuilt omnilisp binary to time instead (no cargo build)
#
# How each is run:
#   omnilisp  `cargo build --release --bin omnilisp` first, then `omnilisp FILE`. Tasks are
#             green tasks on the interpreter's one thread (src/lisp/tasks.rs); generators
#             are native, their producer's frames parked between items (src/lisp/generator.rs).
#   racket    `raco make FILE` first (untimed: compilation to machine code), one untimed
#             warm-up run, then `racket FILE`, which loads the compiled module. Tasks are
#             racket/base threads (green, preemptive, on one OS thread), with a box for the
#             result since a Racket thread returns none (thread-wait, then unbox); channels
#             are racket/base's make-channel, channel-put, channel-get (synchronous, like
#             OmniLisp's (make-chan)); generators are racket/generator's.
# Every run's output must be the same for both; a program whose outputs differ, or a run that
# fails or times out, is marked in the table and the script exits with status 1. If Racket is
# not installed its columns show "-", with a line saying so.
#
# The programs are written the same way in both languages (the same definitions, the same
# loops), not each in its fastest idiom. Guile is left out: its threads are OS threads and
# its green threads (fibers) are not part of it. The machinery is shared with
# benches/lisp_peers.sh: benches/lisp_common.sh.
set -euo pipefail

BENCH_NAME=lisp_tasks_peers
PROGRAMS=(spawn pingpong genitems)
IMPLS=(omnilisp racket)
declare -A QUICK_N=([spawn]=1000 [pingpong]=1000 [genitems]=1000)

# shellcheck source-path=SCRIPTDIR source=lisp_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lisp_common.sh"
lisp_bench_main "$@"
