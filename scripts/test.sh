#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every TAP test.
#   scripts/test.sh              normal build (gcc)
#   scripts/test.sh --sanitize   clang with ASan + UBSan, plus bounded libFuzzer runs
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
dir=$("$top/scripts/build.sh" "$@" | tail -n 1)
jobs=2
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
set +e
make -C "$dir" -j"$jobs" check
rc=$?
set -e
if [ $rc -ne 0 ] && [ -f "$dir/test-suite.log" ]; then
  cat "$dir/test-suite.log"
fi
exit $rc
