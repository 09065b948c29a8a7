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
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

RUNS=${LISP_BENCH_RUNS:-3}
TIMEOUT=${LISP_BENCH_TIMEOUT:-300}
PROGRAMS=(fib tail list control)
IMPLS=(omnilisp guile racket)
quick=0

die() {
    echo "lisp_peers: error: $*" >&2
    exit 1
}

note() {
    echo "lisp_peers: $*" >&2
}

for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument \`$arg\` (try --help)" ;;
    esac
done

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "LISP_BENCH_RUNS must be a positive integer, not \`$RUNS\`"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "LISP_BENCH_TIMEOUT must be a positive integer, not \`$TIMEOUT\`"
command -v timeout > /dev/null || die "timeout (coreutils) is needed"
command -v cargo > /dev/null || die "cargo is needed"

# ---- Build omnilisp and find the binary (wherever CARGO_TARGET_DIR or cargo config put it).
note "building omnilisp (cargo build --release --bin omnilisp)"
build_json=$(cargo build --release --bin omnilisp --message-format=json-render-diagnostics) ||
    die "cargo build failed"
omnilisp=$(printf '%s\n' "$build_json" |
    grep '"reason":"compiler-artifact"' | grep '"name":"omnilisp"' |
    grep -o '"executable":"[^"]*"' | tail -1 | sed 's/^"executable":"//; s/"$//' || true)
if [[ -z "$omnilisp" ]]; then
    target=${CARGO_TARGET_DIR:-target}
    [[ "$target" = /* ]] || target="$root/$target"
    omnilisp="$target/release/omnilisp"
fi
[[ -x "$omnilisp" ]] || die "the omnilisp binary is not at $omnilisp"

# ---- Which implementations are here.
declare -A have
have[omnilisp]=1
have[guile]=0
have[racket]=0
if command -v guile > /dev/null; then have[guile]=1; else echo "guile: not found, skipped"; fi
if command -v racket > /dev/null && command -v raco > /dev/null; then
    have[racket]=1
else
    echo "racket: not found (racket and raco are needed), skipped"
fi

# ---- The programs, copied to a scratch directory (scaled down under --quick).
work=$(mktemp -d "${TMPDIR:-/tmp}/lisp_peers.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$root"/benches/lisp/*.olisp "$root"/benches/lisp/*.scm "$root"/benches/lisp/*.rkt "$work"/
if ((quick)); then
    declare -A small=([fib]=20 [tail]=100000 [list]=10000 [control]=1000)
    for p in "${PROGRAMS[@]}"; do
        for ext in olisp scm rkt; do
            f="$work/$p.$ext"
            grep -q '^(define n [0-9]*)' "$f" || die "$p.$ext has no \`(define n N)\` line to scale"
            sed -i "s/^(define n [0-9]*)/(define n ${small[$p]})/" "$f"
        done
    done
fi

export XDG_CACHE_HOME="$work/cache" # Guile's compiled-file cache, fresh for this run.

# Microseconds since the epoch, without a fork (bash 5's EPOCHREALTIME; date otherwise).
now_us() {
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        local t=${EPOCHREALTIME/[.,]/}
        echo "$t"
    else
        echo $(($(date +%s%N) / 1000))
    fi
}

# run_once OUTFILE: runs the command in ${cmd[@]} once under the timeout, its output to
# OUTFILE (and OUTFILE.err); sets $elapsed_us and $run_rc.
run_once() {
    local t0 t1
    t0=$(now_us)
    set +e
    timeout "$TIMEOUT" "${cmd[@]}" > "$1" 2> "$1.err"
    run_rc=$?
    set -e
    t1=$(now_us)
    elapsed_us=$((t1 - t0))
}

median_us() { # the median of its arguments (integers), the mean of the middle two if even
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

secs() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1e6 }'; }

# ---- Versions.
echo "omnilisp: git $(git -C "$root" rev-parse --short HEAD 2> /dev/null || echo '?'), release build ($omnilisp)"
((have[guile])) && echo "guile: $(guile --version | head -1)"
((have[racket])) && echo "racket: $(racket --version | head -1)"
echo "runs: $RUNS per program and implementation (median shown), timeout ${TIMEOUT}s per run$( ((quick)) && echo ', --quick sizes')"
echo

# ---- Compile and warm up the peers.
if ((have[racket])); then
    note "raco make (untimed)"
    for p in "${PROGRAMS[@]}" empty; do
        timeout "$TIMEOUT" raco make "$work/$p.rkt" || die "raco make $p.rkt failed"
    done
fi

declare -A result median
failed=0
bench() { # bench IMPL PROG: sets median[IMPL,PROG] (µs, or a word) and result[IMPL,PROG]
    local impl=$1 p=$2 i times=() out="$work/$1.$2.out"
    case "$impl" in
        omnilisp) cmd=("$omnilisp" "$work/$p.olisp") ;;
        guile) cmd=(guile "$work/$p.scm") ;;
        racket) cmd=(racket "$work/$p.rkt") ;;
    esac
    if [[ "$impl" != omnilisp ]]; then # warm-up: Guile compiles here; both fill the page cache
        run_once "$out"
        if ((run_rc != 0)); then
            note "$p under $impl: warm-up run failed (status $run_rc): $(tail -3 "$out.err")"
            median[$impl,$p]=$( ((run_rc == 124)) && echo timeout || echo error)
            failed=1
            return
        fi
    fi
    for ((i = 1; i <= RUNS; i++)); do
        run_once "$out"
        if ((run_rc != 0)); then
            note "$p under $impl: run $i failed (status $run_rc): $(tail -3 "$out.err")"
            median[$impl,$p]=$( ((run_rc == 124)) && echo timeout || echo error)
            failed=1
            return
        fi
        local got
        got=$(cat "$out")
        if ((i > 1)) && [[ "$got" != "${result[$impl,$p]}" ]]; then
            note "$p under $impl: run $i printed \`$got\`, run 1 \`${result[$impl,$p]}\`"
            failed=1
        fi
        result[$impl,$p]=$got
        times+=("$elapsed_us")
        note "$p under $impl: run $i/$RUNS $(secs "$elapsed_us") s"
    done
    median[$impl,$p]=$(median_us "${times[@]}")
}

for p in "${PROGRAMS[@]}" empty; do
    for impl in "${IMPLS[@]}"; do
        if ((have[$impl])); then bench "$impl" "$p"; else median[$impl,$p]=-; fi
    done
done

# ---- The table.
cell() { # a median as seconds, or the word in its place
    if [[ "$1" =~ ^[0-9]+$ ]]; then secs "$1"; else echo "$1"; fi
}
ratio() {
    if [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf(r >= 10 ? "%.1f" : "%.2f", r) }'
    else
        echo -
    fi
}

echo "| program | omnilisp s | guile s | racket s | omnilisp/guile | omnilisp/racket |"
echo "|---|---:|---:|---:|---:|---:|"
mismatches=()
for p in "${PROGRAMS[@]}"; do
    o=${median[omnilisp,$p]} g=${median[guile,$p]} r=${median[racket,$p]}
    # Every implementation that ran must print what the others printed.
    ref="" same=1
    for impl in "${IMPLS[@]}"; do
        [[ -v "result[$impl,$p]" ]] || continue
        if [[ -z "$ref" ]]; then ref=${result[$impl,$p]}; elif [[ "${result[$impl,$p]}" != "$ref" ]]; then same=0; fi
    done
    name=$p
    if ((!same)); then
        name="$p (outputs differ!)"
        mismatches+=("$p")
        failed=1
    fi
    echo "| $name | $(cell "$o") | $(cell "$g") | $(cell "$r") | $(ratio "$o" "$g") | $(ratio "$o" "$r") |"
done
echo
line="startup (empty program, median, included in the times above):"
for impl in "${IMPLS[@]}"; do
    e=$(cell "${median[$impl,empty]}")
    [[ "$e" = *[0-9] ]] && e+=" s"
    line+=" $impl $e,"
done
echo "${line%,}"
line="results:"
for p in "${PROGRAMS[@]}"; do
    line+=" $p $(tr '\n' ' ' <<< "${result[omnilisp,$p]:-?}" | sed 's/ *$//'),"
done
echo "${line%,}"
for p in "${mismatches[@]+"${mismatches[@]}"}"; do
    for impl in "${IMPLS[@]}"; do
        [[ -v "result[$impl,$p]" ]] && echo "$p printed under $impl: ${result[$impl,$p]}"
    done
done
exit "$failed"
