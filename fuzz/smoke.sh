#!/usr/bin/env bash
# CI smoke test for the fuzz targets: build them all, then run each for a few seconds from its committed seeds and
# regression inputs. It keeps the targets compiling and catches shallow crashes; real fuzzing is in README.md.
#
# Exits non-zero when a target fails to build or crashes. Exits 0 with a SKIPPED message only when there is no
# nightly toolchain (libFuzzer's sanitizers need one). FUZZ_SMOKE_SECONDS sets the time per target (default 5).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SMOKE_SECONDS:-5}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz smoke: SKIPPED: no nightly toolchain (install one with 'rustup toolchain install nightly')"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build

failed=()
for target in $(cargo +nightly fuzz list); do
    # libFuzzer writes new inputs to the first corpus directory: a scratch one, so the seeds stay as committed.
    scratch="$(mktemp -d)"
    dirs=("$scratch" "fuzz/seeds/$target")
    if [ -d "fuzz/regressions/$target" ]; then
        dirs+=("fuzz/regressions/$target")
    fi
    echo "fuzz smoke: $target for ${seconds}s"
    if cargo +nightly fuzz run "$target" "${dirs[@]}" -- -max_total_time="$seconds" -print_final_stats=1; then
        :
    else
        failed+=("$target")
    fi
    rm -rf "$scratch"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke: FAILED: ${failed[*]} (crashing inputs are under fuzz/artifacts/<target>/)" >&2
    exit 1
fi
echo "fuzz smoke: ok"
