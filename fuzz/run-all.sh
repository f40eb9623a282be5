#!/usr/bin/env bash
# Fuzz every target for a set time, one after the other, and record what each did.
#
#   fuzz/run-all.sh [SECONDS]      (default 600: ten minutes per target)
#
# Each target starts from its working corpus (fuzz/corpus/<target>, git-ignored, grown by earlier runs), its
# committed seeds and its regression inputs. libFuzzer's final statistics (executions, coverage edges, features,
# corpus size) go to fuzz/RESULTS.md as one table row per target, with the date, the toolchain and the time given;
# the full output to fuzz/target/run-all/<target>.log. Exits non-zero when a target crashes or fails to build.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-600}"
cargo +nightly fuzz build
mkdir -p fuzz/target/run-all
started="$(date -u +%Y-%m-%dT%H:%MZ)"
rows=()
failed=()
for target in $(cargo +nightly fuzz list); do
    mkdir -p "fuzz/corpus/$target"
    dirs=("fuzz/corpus/$target" "fuzz/seeds/$target")
    if [ -d "fuzz/regressions/$target" ]; then
        dirs+=("fuzz/regressions/$target")
    fi
    log="fuzz/target/run-all/$target.log"
    echo "fuzz run-all: $target for ${seconds}s (log: $log)"
    status=ok
    if ! cargo +nightly fuzz run "$target" "${dirs[@]}" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        status=CRASH
        failed+=("$target")
    fi
    # The last status line ("#N DONE cov: C ft: F corp: K/..."), and the final stats.
    last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
    execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)"
    rate="$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' || true)"
    cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")"
    ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")"
    corp="$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")"
    rows+=("| $target | $seconds | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $status |")
    echo "fuzz run-all: $target: $status, ${execs:-?} executions, cov ${cov:-?}, ft ${ft:-?}"
done

{
    echo
    echo "## Run of $started ($(cargo +nightly --version), $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "Command: \`fuzz/run-all.sh $seconds\`. cov = coverage edges, ft = libFuzzer features, corpus = inputs kept."
    echo
    echo "| target | seconds | executions | execs/s | cov | ft | corpus | result |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${rows[@]}"
} >>fuzz/RESULTS.md

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz run-all: CRASHED: ${failed[*]} (inputs under fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "fuzz run-all: ok; results appended to fuzz/RESULTS.md"
