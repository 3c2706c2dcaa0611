#!/usr/bin/env bash
# Replays every fuzz target's corpus (fuzz/corpus/<target> and build/fuzz/corpus/<target>) through
# build/replay/replay_<target> - the target without libFuzzer or sanitizers - under valgrind
# memcheck: reads of uninitialised memory, which the ASan+UBSan fuzz runs cannot see.
# Prints a line per target and "N passed, N failed" at the end.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
for bin in build/replay/replay_*; do
    t=${bin#build/replay/replay_}
    log="build/replay/$t.log"
    n=$(find "fuzz/corpus/$t" "build/fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
    find "fuzz/corpus/$t" "build/fuzz/corpus/$t" -type f -print0 2>/dev/null |
        xargs -0 -r -n 5000 valgrind --quiet --error-exitcode=99 "$bin" >"$log" 2>&1
    if [ $? -eq 0 ]; then
        passed=$((passed + 1))
        echo "fuzz-valgrind $t: ok, $n inputs"
    else
        failed=$((failed + 1))
        echo "fuzz-valgrind $t: FAILED, see $log"
        grep -m 5 -E '^==[0-9]+== [A-Z]' "$log"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
