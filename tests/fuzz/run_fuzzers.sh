#!/usr/bin/env bash
# run_fuzzers.sh - run libFuzzer targets, a few at a time, then summarise.
#
#   run_fuzzers.sh BIN_DIR OUT_DIR SECONDS JOBS TARGET:MAX_LEN...
#
# `make fuzz` calls it. Each target runs for SECONDS over its committed
# corpus tests/fuzz/corpus/TARGET (read only) plus OUT_DIR/scratch/TARGET,
# where new inputs are written; crashes, leaks and timeouts are written to
# OUT_DIR/artifacts/TARGET-*, the log to OUT_DIR/logs/TARGET.log. The exit
# status is 1 if any target found something.
set -u

if [ $# -lt 5 ]; then
    echo "usage: $0 BIN_DIR OUT_DIR SECONDS JOBS TARGET:MAX_LEN..." >&2
    exit 2
fi
bin=$1 out=$2 seconds=$3 jobs=$4
shift 4
corpus=tests/fuzz/corpus
mkdir -p "$out/artifacts" "$out/logs" "$out/scratch"

run_one() {
    local target=${1%%:*} max_len=${1#*:}
    local log="$out/logs/$target.log"
    mkdir -p "$out/scratch/$target"
    echo "fuzzing $target for ${seconds}s (max_len $max_len)"
    # -timeout: one input taking longer is a hang. -rss_limit_mb: a leak or
    # an allocation driven by the input shows up as a finding.
    "$bin/$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=30 \
        -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$target-" \
        "$out/scratch/$target" "$corpus/$target" >"$log" 2>&1
    echo $? >"$out/logs/$target.status"
    echo "done: $target (exit $(cat "$out/logs/$target.status"))"
}
export -f run_one
export bin out seconds corpus

rm -f "$out"/logs/*.status
touch "$out/logs/started"
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}

stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

status=0
printf '\n%-20s %12s %8s %7s %7s %6s %7s %8s  %s\n' target execs exec/s cov ft corpus new rss_mb findings
for spec in "$@"; do
    target=${spec%%:*}
    log="$out/logs/$target.log"
    execs=$(stat_of number_of_executed_units "$log")
    rate=$(stat_of average_exec_per_sec "$log")
    added=$(stat_of new_units_added "$log")
    rss=$(stat_of peak_rss_mb "$log")
    last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: [0-9]+' | tail -n 1)
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.*corp: \([0-9]*\).*/\1/p' <<<"$last")
    found=$(find "$out/artifacts" -type f -name "$target-*" -newer "$out/logs/started" | wc -l)
    rc=$(cat "$out/logs/$target.status" 2>/dev/null || echo "?")
    what=none
    if [ "$rc" != 0 ]; then
        what=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer|UndefinedBehaviorSanitizer)[^(]*|runtime error:.*|fuzz invariant failed:.*' "$log" || true)
        what="exit $rc: ${what:-see $log} ($found artifact(s))"
        status=1
    fi
    printf '%-20s %12s %8s %7s %7s %6s %7s %8s  %s\n' "$target" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "${added:-?}" "${rss:-?}" "$what"
done
exit $status
