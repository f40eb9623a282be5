#!/usr/bin/env bash
# The fleet simulation's soak: many seeds, long shifts, several seed streams at once.
#
#   tests/soak.sh [JOBS] [FIRST_SEED] [COUNT] [SECS]     (defaults: 3 1000 200 60)
#
# Builds the fleet test once, then runs COUNT seeds from FIRST_SEED (each a SECS-second safety phase, then the
# healed liveness phase and the checkers; see tests/tests/fleet.rs) split round-robin over JOBS processes. Each
# process's output goes to target/soak/<stream>.log; every seed's one-line verdict ("fleet seed N: ok: ..." or
# "FAILED" with its replay command) is collected, and a summary section is appended to tests/SOAK.md. Extra
# environment (DOCKHAND_FLEET_BACKEND, ...) is passed through to the test. Exits non-zero when any seed failed.
set -euo pipefail

cd "$(dirname "$0")/.."
jobs="${1:-3}" first="${2:-1000}" count="${3:-200}" secs="${4:-60}"
target="${CARGO_TARGET_DIR:-target}"

cargo build -p dockhand-server -p dockhand-agent --bins
exe="$(cargo test -p dockhand-tests --test fleet --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep '/fleet-' | tail -n 1)"
[ -x "$exe" ] || { echo "soak: could not find the fleet test binary" >&2; exit 2; }

# Only this run's logs: the summary reads every log in the directory.
mkdir -p "$target/soak"
rm -f "$target"/soak/*.log
started="$(date -u +%Y-%m-%dT%H:%MZ)" t0="$(date +%s)" commit="$(git rev-parse --short HEAD)"
pids=()
for ((j = 0; j < jobs; j++)); do
    seeds="$(seq "$((first + j))" "$jobs" "$((first + count - 1))" | paste -sd, -)"
    [ -n "$seeds" ] || continue
    DOCKHAND_FLEET_SEEDS="$seeds" DOCKHAND_FLEET_SECS="$secs" \
        "$exe" --nocapture >"$target/soak/$j.log" 2>&1 &
    pids+=("$!")
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
elapsed=$(( $(date +%s) - t0 ))

# "fleet seed N (backend, nodes): ok in ..." or "...: FAILED: why"; -a: a log may hold a stray binary byte.
verdicts="$(cat "$target"/soak/*.log | grep -aE '^fleet seed [0-9]+( \([^)]*\))?: (ok|FAILED)' | sort -t' ' -k3,3n || true)"
ok="$(grep -c ': ok:' <<<"$verdicts" || true)"
failed="$(grep ': FAILED' <<<"$verdicts" || true)"
nfailed="$(grep -c ': FAILED' <<<"$verdicts" || true)"
{
    echo
    echo "## Soak of $started (commit $commit): $count seeds from $first, ${secs} s shifts, $jobs streams"
    echo
    echo "Command: \`tests/soak.sh $jobs $first $count $secs\`${DOCKHAND_FLEET_BACKEND:+ with DOCKHAND_FLEET_BACKEND=$DOCKHAND_FLEET_BACKEND}." \
        "Wall time $((elapsed / 60)) min $((elapsed % 60)) s; $(nproc) cores; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "Result: **$ok seeds passed, $nfailed failed** (of $count)."
    if [ -n "$failed" ]; then
        echo
        echo '```text'
        echo "$failed"
        echo '```'
    fi
    echo
    echo "<details><summary>every seed's line</summary>"
    echo
    echo '```text'
    echo "$verdicts"
    echo '```'
    echo
    echo "</details>"
} >>tests/SOAK.md
echo "soak: $ok passed, $nfailed failed of $count in ${elapsed}s; appended to tests/SOAK.md"
[ "$nfailed" -eq 0 ] && [ "$ok" -eq "$count" ]
