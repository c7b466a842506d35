#!/usr/bin/env bash
# Bounded libFuzzer runs of every fuzz target built (configure --enable-fuzz).
# Each target runs FUZZ_SECONDS (default 30) from its seed corpus; a crash,
# leak or sanitizer report fails it.  Without fuzz targets the test skips.
set -u
secs=${FUZZ_SECONDS:-30}
targets=()
for f in "$BUILDDIR"/fuzz/fuzz_*; do
  [ -x "$f" ] && [ ! -d "$f" ] && case "$f" in *.o) ;; *) targets+=("$f") ;; esac
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "1..0 # SKIP no fuzz targets in this build (configure --enable-fuzz with clang)"
  exit 0
fi
echo "1..${#targets[@]}"
n=0
for t in "${targets[@]}"; do
  n=$((n + 1))
  name=$(basename "$t")
  corpus="$SRCDIR/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
  if "$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 "$work" >"$work.log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$work.log" | tail -1)
    echo "ok $n - $name: $runs in ${secs}s, no crash"
  else
    echo "not ok $n - $name crashed"
    sed 's/^/# /' "$work.log" | tail -40
  fi
  rm -rf "$work" "$work.log"
done
