# tests/tap.sh — TAP helpers for the shell tests (source it, after lib.sh).
#
# t NAME CONDITION evals CONDITION and prints "ok N - NAME" or "not ok N -
# NAME" (then failed=1); ok STATUS NAME does the same for an exit status
# already taken (0: ok); diag TEXT prints a comment; end the test with
# `echo "1..$n"; exit $failed`.
n=0; failed=0
t() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi; }
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; fi; }
diag() { echo "# $*"; }

# cluster_dir NAME: dir = a fresh directory for a test cluster of $bin,
# whose cluster is stopped and which is removed when the test exits
cluster_dir() {
  dir=$(mktemp -d "${TMPDIR:-/tmp}/shardlite-$1-XXXXXX")
  trap '"$bin" cluster stop --dir "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
}
