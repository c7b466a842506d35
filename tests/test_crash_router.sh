#!/usr/bin/env bash
# tests/test_crash.sh with the router's decision log deciding every
# distributed commit (SHARDLITE_2PC_DECIDER=router) instead of the last
# writer: every failpoint of that path, crash by crash.
export SHARDLITE_2PC_DECIDER=router
exec bash "${SRCDIR:-$(dirname "$0")/..}/tests/test_crash.sh"
