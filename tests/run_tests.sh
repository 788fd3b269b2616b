#!/usr/bin/env bash
# Runs every test binary in DIR (cmocka), shows their output, and ends with the
# one summary line "N passed, N failed". A binary that crashes or times out
# before reporting counts as one failure, so nothing fails silently.
set -u
dir=${1:?usage: run_tests.sh BUILD_DIR/tests}
passed=0 failed=0
for bin in "$dir"/test_*; do
    [ -x "$bin" ] || continue
    case "$bin" in *.o|*.d) continue ;; esac
    name=$(basename "$bin")
    echo "=== $name"
    log=$(mktemp)
    timeout "${TEST_TIMEOUT:-900}" "$bin" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    p=$(sed -n 's/.*\[  PASSED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$log" | tail -n 1)
    f=$(sed -n 's/.*\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$log" | tail -n 1)
    rm -f "$log"
    p=${p:-0} f=${f:-0}
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "$name: exited with status $status before reporting a failure"
        f=1
    elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "$name: reported no result"
        f=1
    fi
    passed=$((passed + p)) failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
