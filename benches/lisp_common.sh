# shellcheck shell=bash
# What benches/lisp_peers.sh and benches/lisp_tasks_peers.sh share: build omnilisp, find the
# peers, copy (and under --quick scale) the programs, time each under each implementation,
# check that they all print the same, and print the markdown table. Sourced, not run.
#
# The sourcing script sets `set -euo pipefail`, then these, then calls `lisp_bench_main "$@"`:
#   BENCH_NAME  its name, for messages
#   PROGRAMS    the programs: benches/lisp/NAME.olisp, NAME.scm (guile), NAME.rkt (racket),
#               each with a `(define n N)` line (what --quick rewrites)
#   IMPLS       the implementations, omnilisp first, then peers among guile and racket; the
#               table has a column for each and a ratio omnilisp / peer for each peer
#   QUICK_N     an associative array: program -> its n under --quick
# The script's own comment block, from line 2 to its `set -euo pipefail`, is its --help.
#
# Each program also needs benches/lisp/empty.EXT for each implementation: its median time is
# shown as that implementation's startup.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
declare -A LISP_EXT=([omnilisp]=olisp [guile]=scm [racket]=rkt)

die() {
    echo "$BENCH_NAME: error: $*" >&2
    exit 1
}

note() {
    echo "$BENCH_NAME: $*" >&2
}

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

# Builds omnilisp (unless LISP_BENCH_OMNILISP names a binary) and sets $omnilisp.
build_omnilisp() {
    if [[ -n "${LISP_BENCH_OMNILISP:-}" ]]; then
        omnilisp=$LISP_BENCH_OMNILISP
        [[ -x "$omnilisp" ]] || die "LISP_BENCH_OMNILISP=$omnilisp is not an executable"
        note "using $omnilisp (LISP_BENCH_OMNILISP), not building"
        omnilisp_how="prebuilt binary ($omnilisp)"
        return
    fi
    command -v cargo > /dev/null || die "cargo is needed (or LISP_BENCH_OMNILISP)"
    note "building omnilisp (cargo build --release --bin omnilisp)"
    local build_json
    build_json=$(cargo build --release --bin omnilisp --message-format=json-render-diagnostics) ||
        die "cargo build failed"
    # Wherever CARGO_TARGET_DIR or cargo config put it.
    omnilisp=$(printf '%s\n' "$build_json" |
        grep '"reason":"compiler-artifact"' | grep '"name":"omnilisp"' |
        grep -o '"executable":"[^"]*"' | tail -1 | sed 's/^"executable":"//; s/"$//' || true)
    if [[ -z "$omnilisp" ]]; then
        local target=${CARGO_TARGET_DIR:-target}
        [[ "$target" = /* ]] || target="$ROOT/$target"
        omnilisp="$target/release/omnilisp"
    fi
    [[ -x "$omnilisp" ]] || die "the omnilisp binary is not at $omnilisp"
    omnilisp_how="release build ($omnilisp)"
}

# bench IMPL PROG: sets median[IMPL,PROG] (µs, or a word) and result[IMPL,PROG].
bench() {
    local impl=$1 p=$2 i got times=() out="$work/$1.$2.out"
    case "$impl" in
        omnilisp) cmd=("$omnilisp" "$work/$p.olisp") ;;
        guile) cmd=(guile "$work/$p.scm") ;;
        racket) cmd=(racket "$work/$p.rkt") ;;
        *) die "no such implementation: $impl" ;;
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

lisp_bench_main() {
    RUNS=${LISP_BENCH_RUNS:-3}
    TIMEOUT=${LISP_BENCH_TIMEOUT:-300}
    local quick=0 arg p impl ext f
    for arg in "$@"; do
        case "$arg" in
            --quick) quick=1 ;;
            -h | --help)
                sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
                exit 0
                ;;
            *) die "unknown argument \`$arg\` (try --help)" ;;
        esac
    done
    [[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "LISP_BENCH_RUNS must be a positive integer, not \`$RUNS\`"
    [[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "LISP_BENCH_TIMEOUT must be a positive integer, not \`$TIMEOUT\`"
    command -v timeout > /dev/null || die "timeout (coreutils) is needed"
    cd "$ROOT"

    build_omnilisp

    # ---- Which implementations are here.
    declare -gA have=([omnilisp]=1)
    for impl in "${IMPLS[@]:1}"; do
        have[$impl]=0
        case "$impl" in
            guile)
                if command -v guile > /dev/null; then have[guile]=1; else echo "guile: not found, skipped"; fi
                ;;
            racket)
                if command -v racket > /dev/null && command -v raco > /dev/null; then
                    have[racket]=1
                else
                    echo "racket: not found (racket and raco are needed), skipped"
                fi
                ;;
            *) die "no such implementation: $impl" ;;
        esac
    done

    # ---- The programs, copied to a scratch directory (scaled down under --quick).
    work=$(mktemp -d "${TMPDIR:-/tmp}/$BENCH_NAME.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    for p in "${PROGRAMS[@]}" empty; do
        for impl in "${IMPLS[@]}"; do
            f="$ROOT/benches/lisp/$p.${LISP_EXT[$impl]}"
            [[ -f "$f" ]] || die "missing: benches/lisp/$p.${LISP_EXT[$impl]}"
            cp "$f" "$work/"
        done
    done
    if ((quick)); then
        for p in "${PROGRAMS[@]}"; do
            [[ -n "${QUICK_N[$p]:-}" ]] || die "no --quick size for $p"
            for impl in "${IMPLS[@]}"; do
                ext=${LISP_EXT[$impl]}
                f="$work/$p.$ext"
                grep -q '^(define n [0-9]*)' "$f" || die "$p.$ext has no \`(define n N)\` line to scale"
                sed -i "s/^(define n [0-9]*)/(define n ${QUICK_N[$p]})/" "$f"
            done
        done
    fi

    export XDG_CACHE_HOME="$work/cache" # Guile's compiled-file cache, fresh for this run.

    # ---- Versions and conditions.
    echo "omnilisp: git $(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo '?'), $omnilisp_how"
    ((${have[guile]:-0})) && echo "guile: $(guile --version | head -1)"
    ((${have[racket]:-0})) && echo "racket: $(racket --version | head -1)"
    echo "runs: $RUNS per program and implementation (median shown), timeout ${TIMEOUT}s per run$( ((quick)) && echo ', --quick sizes')"
    if [[ -r /proc/loadavg ]]; then
        echo "machine: $(nproc 2> /dev/null || echo '?') cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
    fi
    echo

    # ---- Compile the peers.
    if ((${have[racket]:-0})); then
        note "raco make (untimed)"
        for p in "${PROGRAMS[@]}" empty; do
            timeout "$TIMEOUT" raco make "$work/$p.rkt" || die "raco make $p.rkt failed"
        done
    fi

    declare -gA result=() median=()
    failed=0
    for p in "${PROGRAMS[@]}" empty; do
        for impl in "${IMPLS[@]}"; do
            if ((have[$impl])); then bench "$impl" "$p"; else median[$impl,$p]=-; fi
        done
    done

    # ---- The table.
    local head="| program |" rule="|---|" row ref same name line e
    local peers=("${IMPLS[@]:1}")
    for impl in "${IMPLS[@]}"; do head+=" $impl s |" rule+="---:|"; done
    for impl in "${peers[@]}"; do head+=" omnilisp/$impl |" rule+="---:|"; done
    echo "$head"
    echo "$rule"
    local mismatches=()
    for p in "${PROGRAMS[@]}"; do
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
        row="| $name |"
        for impl in "${IMPLS[@]}"; do row+=" $(cell "${median[$impl,$p]}") |"; done
        for impl in "${peers[@]}"; do row+=" $(ratio "${median[omnilisp,$p]}" "${median[$impl,$p]}") |"; done
        echo "$row"
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
}
