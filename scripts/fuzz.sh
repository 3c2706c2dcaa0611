#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS (first argument, default 60) on its seed corpus
# (fuzz/corpus/<target>, committed) plus a working corpus (build/fuzz/corpus/<target>).
# Prints one line per target with its executions, and "N passed, N failed" at the end.
# A crash leaves its input in build/fuzz/artifacts/: add it to fuzz/corpus/<target> once fixed.
set -u
cd "$(dirname "$0")/.."
seconds=${1:-60}
passed=0
failed=0
mkdir -p build/fuzz/artifacts
# one target per CPU at a time: the same fuzzing time per target, in less wall-clock time
run_target() {
    local bin=$1 t=${1#build/fuzz/fuzz_}
    mkdir -p "build/fuzz/corpus/$t" "fuzz/corpus/$t"
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="build/fuzz/artifacts/$t-" "build/fuzz/corpus/$t" "fuzz/corpus/$t" >"build/fuzz/$t.log" 2>&1
    echo $? >"build/fuzz/$t.rc"
}
cpus=$(nproc 2>/dev/null || echo 1)
for bin in build/fuzz/fuzz_*; do
    while [ "$(jobs -rp | wc -l)" -ge "$cpus" ]; do wait -n; done
    run_target "$bin" &
done
wait
for bin in build/fuzz/fuzz_*; do
    t=${bin#build/fuzz/fuzz_}
    log="build/fuzz/$t.log"
    rc=$(cat "build/fuzz/$t.rc" 2>/dev/null || echo 1)
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1)
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "fuzz $t: ok, ${runs:-?} executions in ${seconds}s"
    else
        failed=$((failed + 1))
        echo "fuzz $t: FAILED (exit $rc), see $log"
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
