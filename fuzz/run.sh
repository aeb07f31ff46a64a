#!/usr/bin/env bash
# Bounded fuzzing of the loaders: `fuzz/run.sh SECONDS` (default 60).
#
# With a nightly toolchain and cargo-fuzz (installed here, time-limited, if absent) every target runs
# for SECONDS on one core, starting from the committed corpus (fuzz/corpus/<target>) and the crash
# regressions (fuzz/regressions/<target>); new inputs go to fuzz/corpus-full/<target> (not committed).
# Without them, the committed corpus is replayed through the same checks on stable
# (`cargo test --no-default-features --lib fuzz_checks`, also part of the normal test suite).
#
# Exit status: non-zero if a target crashed (the input is in fuzz/artifacts/<target>/) or the replay failed.
set -u
secs=${1:-60}
cd "$(dirname "$0")/.."
targets=(json_parse json_chunked vector_json kv_json binary_loader)

replay() {
    echo "fuzz/run.sh: $1; replaying the committed corpus instead"
    exec cargo test --no-default-features --lib fuzz_checks
}

cargo +nightly --version >/dev/null 2>&1 || replay "no nightly toolchain"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz (at most ${FUZZ_INSTALL_TIMEOUT:-900} s)"
    timeout "${FUZZ_INSTALL_TIMEOUT:-900}" cargo install cargo-fuzz --locked -j 1 >/dev/null 2>&1 || true
    cargo +nightly fuzz --version >/dev/null 2>&1 || replay "cargo-fuzz could not be installed"
fi
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo +nightly fuzz build -O || replay "the fuzz targets do not build"

status=0
mkdir -p fuzz/logs
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus-full/$t" "fuzz/regressions/$t"
    log="fuzz/logs/$t.log"
    cargo +nightly fuzz run -O "$t" "fuzz/corpus-full/$t" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=16384 -timeout=30 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "fuzz $t: ok, ${execs:-?} executions in ${secs}s, $cov"
    else
        echo "fuzz $t: FAILED (exit $rc), see $log and fuzz/artifacts/$t/"
        grep -A4 'panicked at' "$log" | head -8
        status=1
    fi
done
exit $status
