#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each, one after another, and prints per target the
# executions, executions per second and coverage (libFuzzer's final `cov:` and `ft:`).
#
#   bash fuzz/run.sh SECONDS        (from anywhere; needs a nightly toolchain)
#
# Each target starts from its seeds in fuzz/corpus/<target> and writes what it finds to a
# scratch corpus, so the checked-in seeds never grow. The flags `-len_control=0
# -max_len=1048576` let libFuzzer try large inputs from the start (without them it was seen to
# miss an 18,707-deep nesting for minutes). A crash, leak, timeout (-timeout, 20 s per input)
# or out-of-memory stop fails the run, naming the reproducer under fuzz/artifacts/<target>/;
# replay one with `cargo +nightly fuzz run <target> <file>` (FUZZ_DESCRIBE=1 prints the
# decoded script for the script targets), and keep it there: tests/fuzz_replay.rs replays
# every file of fuzz/artifacts/<target>/ on stable.
set -euo pipefail

seconds=${1:?usage: bash fuzz/run.sh SECONDS}
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

targets=$(cargo +nightly fuzz list)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cargo +nightly fuzz build

status=0
summary=()
for t in $targets; do
    mkdir -p "$scratch/$t"
    seeds=()
    [[ -d "fuzz/corpus/$t" ]] && seeds=("fuzz/corpus/$t")
    echo "==> fuzz $t for $seconds s"
    log="$scratch/$t.log"
    rc=0
    cargo +nightly fuzz run "$t" "$scratch/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -len_control=0 -max_len=1048576 -timeout=20 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    # libFuzzer's last status line: "#RUNS DONE cov: C ft: F ... exec/s: E ...".
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [[ -n $runs ]] || runs=$(sed -E -n 's/^#([0-9]+).*/\1/p' <<<"$last")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(sed -E -n 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -E -n 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    line=$(printf '%-14s runs %-10s exec/s %-7s cov %-6s ft %s' "$t" "${runs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}")
    if ((rc != 0)); then
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        grep -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|^SUMMARY' "$log" | head -n 5 || true
        echo "==> $t FAILED (exit $rc): reproducer ${crash:-not written}"
        line+="  FAILED: ${crash:-exit $rc}"
        status=1
    fi
    echo "$line"
    summary+=("$line")
done

echo
echo "==> fuzz summary ($seconds s per target)"
printf '%s\n' "${summary[@]}"
exit $status
