#!/bin/sh
# wire_flatc.sh — cross-check the C wire codec against the official FlatBuffers
# implementation (Debian's flatc).  TAP on stdout.
#
# Golden messages live in tests/wire_golden/NAME.json, each with NAME.expect:
# the canonical dump tests/wire_tool prints (format in tests/wire_tool.c).
# For every golden file:
#   1. flatc -b turns NAME.json into a binary                (flatc builds)
#   2. wire_tool decode of that binary prints NAME.expect    (C reads flatc)
# and for the valid ones (not bad_*):
#   3. wire_tool encode NAME.expect -> .bin, which flatc turns into the same
#      JSON as NAME.json                                      (flatc reads C)
#   4. wire_tool reencode of flatc's binary -> .bin, same check
# "The same JSON as NAME.json" is what flatc prints for its own binary of
# NAME.json: flatc prints doubles with limited precision (5e-324 comes out
# as 0.0), so the reference goes through the same printer as the result.
# bad_* files are valid FlatBuffers that break wire rules (enum ranges, row
# widths, ...): NAME.expect holds the decoder's error; " at offset N" is
# stripped on both sides since offsets depend on flatc's layout.
#
# JSON equality is semantic (tests via python3): key order and formatting
# ignored; fields at their default (0, false, Ping/Null/Ok, -0.0), empty
# params/buckets/rows/types and columns [] without rows count as absent,
# because FlatBuffers itself does not tell them apart; NaN equals NaN.
#
# Environment: $FLATC (empty: skip everything), $SRCDIR, $BUILDDIR.

if [ -z "$FLATC" ]; then
	echo "1..0 # SKIP flatc not installed"
	exit 0
fi
SRCDIR=${SRCDIR:-.}
BUILDDIR=${BUILDDIR:-.}
TOOL=$BUILDDIR/tests/wire_tool
SCHEMA=$SRCDIR/txn/wire.fbs
GOLDEN=$SRCDIR/tests/wire_golden

if [ ! -x "$TOOL" ]; then
	echo "Bail out! $TOOL not built"
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wire_flatc.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

PYTHON=$(command -v python3 || true)
cat > "$tmp/jsoneq.py" <<'EOF'
import json, math, re, sys

ENUM_DEFAULTS = {"op": "Ping", "type": "Null", "status": "Ok"}
EMPTY_IS_ABSENT = {"params", "buckets", "rows", "types", "ended"}

def load(path):
    text = open(path, encoding="utf-8").read()
    # flatc writes bare nan/inf (not JSON); make them Python's spelling.
    def fix(m):
        word = "NaN" if m.group(4) == "nan" else m.group(3) + "Infinity"
        return m.group(1) + m.group(2) + word
    text = re.sub(r'([:\[,])(\s*)(-?)(nan|inf)\b', fix, text)
    return json.loads(text)

def norm(x, key=None, field=True):
    """Normalize; a table field at its default becomes None (absent)."""
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            v = norm(v, k)
            if v is not None:
                out[k] = v
        if out.get("columns") == [] and "rows" not in out:
            del out["columns"]
        return out
    if isinstance(x, list):
        if not x and key in EMPTY_IS_ABSENT:
            return None
        return [norm(v, field=False) for v in x]
    if isinstance(x, float) and math.isnan(x):
        return "NaN"
    if not field:
        return x
    if isinstance(x, bool):
        return x or None
    if isinstance(x, (int, float)):
        return None if x == 0 else x
    if key in ENUM_DEFAULTS and x == ENUM_DEFAULTS[key]:
        return None
    return x

a, b = (norm(load(p)) for p in sys.argv[1:3])
if a != b:
    for name, v in (("want", a), ("got", b)):
        for line in json.dumps(v, indent=1, sort_keys=True).splitlines():
            print("%s: %s" % (name, line))
    sys.exit(1)
EOF

n=0
failed=0
ok() { # status description
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}
skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}
diag() { sed 's/^/# /' "$@"; }

# flatc --json FILE.bin -> OUT.json (in its own directory)
to_json() {
	mkdir -p "$tmp/json.$2" &&
	"$FLATC" --json --strict-json --raw-binary -o "$tmp/json.$2" \
		"$SCHEMA" -- "$1" >"$tmp/flatc.err" 2>&1 &&
	mv "$tmp/json.$2/$(basename "$1" .bin).json" "$tmp/$2.json"
}

json_eq() { # want.json got.json description
	if [ -z "$PYTHON" ]; then
		skip "$3" "python3 not installed"
		return
	fi
	"$PYTHON" "$tmp/jsoneq.py" "$1" "$2" >"$tmp/eq.out" 2>&1
	rc=$?
	ok $rc "$3"
	[ $rc -eq 0 ] || diag "$tmp/eq.out"
}

for json in "$GOLDEN"/*.json; do
	name=$(basename "$json" .json)
	expect=$GOLDEN/$name.expect
	out=$tmp/$name
	mkdir -p "$out"

	"$FLATC" -b -o "$out" "$SCHEMA" "$json" >"$tmp/flatc.err" 2>&1
	rc=$?
	[ -f "$out/$name.bin" ] || rc=1
	ok $rc "$name: flatc builds the binary"
	if [ $rc -ne 0 ]; then
		diag "$tmp/flatc.err"
		continue
	fi

	"$TOOL" decode "$out/$name.bin" >"$out/dump" 2>&1
	sed 's/ at offset [0-9]*$//' "$out/dump" >"$out/dump.cmp"
	sed 's/ at offset [0-9]*$//' "$expect" >"$out/expect.cmp"
	diff -u "$out/expect.cmp" "$out/dump.cmp" >"$out/diff" 2>&1
	ok $? "$name: C decoder reads flatc's binary as $name.expect"
	diag "$out/diff"

	case $name in bad_*) continue ;; esac

	if ! to_json "$out/$name.bin" "$name.ref"; then
		ok 1 "$name: flatc prints its own binary"
		diag "$tmp/flatc.err"
		continue
	fi
	ref=$tmp/$name.ref.json

	if "$TOOL" encode "$expect" "$out/enc.bin" 2>"$tmp/tool.err" &&
	   to_json "$out/enc.bin" "$name.enc"; then
		json_eq "$ref" "$tmp/$name.enc.json" \
			"$name: flatc reads the C encoding of $name.expect as $name.json"
	else
		ok 1 "$name: C encoding of $name.expect readable by flatc"
		diag "$tmp/tool.err" "$tmp/flatc.err"
	fi

	if "$TOOL" reencode "$out/$name.bin" "$out/re.bin" 2>"$tmp/tool.err" &&
	   to_json "$out/re.bin" "$name.re"; then
		json_eq "$ref" "$tmp/$name.re.json" \
			"$name: flatc reads the C re-encoding of flatc's binary as $name.json"
	else
		ok 1 "$name: C re-encoding readable by flatc"
		diag "$tmp/tool.err" "$tmp/flatc.err"
	fi
done

echo "1..$n"
[ $failed -eq 0 ]
