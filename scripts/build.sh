#!/usr/bin/env bash
# Builds shardlite out of tree.
#   scripts/build.sh              -> build/            (gcc, -O2)
#   scripts/build.sh --sanitize   -> build-sanitize/   (clang, ASan+UBSan, libFuzzer targets)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

mode=${1:-}
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
  autoreconf -fi >/dev/null
fi
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2

if [ "$mode" = "--sanitize" ]; then
  dir=build-sanitize
  mkdir -p "$dir"
  if [ ! -f "$dir/Makefile" ]; then
    (cd "$dir" && CC=clang "$top/configure" -q --enable-sanitize --enable-fuzz)
  fi
else
  dir=build
  mkdir -p "$dir"
  if [ ! -f "$dir/Makefile" ]; then
    (cd "$dir" && "$top/configure" -q)
  fi
fi
make -s -C "$dir" -j"$jobs" all
echo "$top/$dir"
