#!/usr/bin/env python3
"""compare_report.py OUT SECONDS CRASH_AT DOWN CLIENTS SEED

Reads what examples/compare.sh left in OUT (each run's bank output
SCENARIO-MODE.log and per-second SCENARIO-MODE.timeline) and writes
OUT/report.md and OUT/throughput.svg.  Every number comes from those files.
"""
import os
import re
import sys

out, secs, crash_at, down, clients, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
SCENARIOS = [("nofault", "a) no faults"), ("hot", "b) contention on 8 hot accounts"),
             ("crash", "c) coordinator (router) killed -9 and restarted")]
MODES = [("2pc", "2PC"), ("saga", "saga")]


def num(s):
    return int(s.replace(",", "")) if s is not None else None


def parse_log(path):
    r = {}
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return r
    m = re.search(r"transfers committed\s+([\d,]+) in ([\d.]+) s: ([\d,]+) per second", text)
    if m:
        r["committed"], r["tps"] = num(m.group(1)), num(m.group(3))
    m = re.search(r"p50 ([\d.]+) ms\s+p95 ([\d.]+) ms\s+p99 ([\d.]+) ms", text)
    if m:
        r["p50"], r["p99"] = float(m.group(1)), float(m.group(3))
    for key, pat in (("retries", r"retries\s+([\d,]+)"), ("aborts", r"aborts\s+([\d,]+)"),
                     ("errors", r"unexpected errors\s+([\d,]+)")):
        m = re.search(pat, text)
        if m:
            r[key] = num(m.group(1))
    m = re.search(r"\+ ([\d,]+) COMMITs with an unknown outcome", text)
    r["unknown"] = num(m.group(1)) if m else 0
    m = re.search(r"audits\s+([\d,]+), ([\d,]+) with a wrong total", text)
    if m:
        r["audits"], r["wrong"] = num(m.group(1)), num(m.group(2))
    m = re.search(r"^(PASS|FAIL)[^\n]*", text, re.M)
    r["verdict"] = m.group(0) if m else "no verdict (see the log)"
    m = re.search(r"final total\s+(\S+), expected (\S+)", text)
    r["total_ok"] = bool(m) and m.group(1) == m.group(2)
    return r


def parse_timeline(path):
    rows = []
    try:
        for line in open(path):
            f = line.split()
            if f and f[0].isdigit():
                rows.append(tuple(int(x) for x in f[:5]))
    except OSError:
        pass
    return rows


def longest_stall(tl):
    """Longest run of seconds without a committed transfer."""
    best = cur = 0
    for row in tl:
        cur = cur + 1 if row[1] == 0 else 0
        best = max(best, cur)
    return best


runs = {}
for sc, _ in SCENARIOS:
    for mode, _ in MODES:
        r = parse_log(os.path.join(out, f"{sc}-{mode}.log"))
        r["timeline"] = parse_timeline(os.path.join(out, f"{sc}-{mode}.timeline"))
        r["stall"] = longest_stall(r["timeline"])
        runs[(sc, mode)] = r


def cell(v, fmt="{:,}"):
    return "?" if v is None else fmt.format(v)


lines = ["# 2PC against sagas", "",
         f"`examples/compare.sh` on {os.cpu_count()} cores: the bank workload of `examples/bank` "
         f"({clients} clients, seed {seed}, {secs} s per run, a fresh 4-shard cluster per run). "
         "Every figure below was measured in this run.", ""]
for sc, title in SCENARIOS:
    lines += [f"## {title}", ""]
    if sc == "crash":
        lines += [f"The router was killed with -9 about {crash_at} s into the transfers and restarted {down} s later.", ""]
    lines += ["| mode | transfers/s | p50 ms | p99 ms | aborts | retries | errors | unknown outcome | "
              "longest stall s | audits | wrong audits | total exact | bank verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for mode, mname in MODES:
        r = runs[(sc, mode)]
        lines.append("| " + " | ".join([
            mname, cell(r.get("tps")), cell(r.get("p50"), "{:.2f}"), cell(r.get("p99"), "{:.2f}"),
            cell(r.get("aborts")), cell(r.get("retries")), cell(r.get("errors")), cell(r.get("unknown")),
            str(r["stall"]), cell(r.get("audits")), cell(r.get("wrong")),
            "yes" if r.get("total_ok") else "NO", r.get("verdict", "?").split(":")[0]]) + " |")
    lines.append("")
lines += ["## Reading it", "",
          "- *wrong audits*: scatter reads of `SELECT sum(balance)` that saw a total other than the true one. "
          "2PC reads at a consistent cut and should show none; a saga's intermediate state (debited, "
          "not yet credited) is visible to everyone, so sagas show many.",
          "- *longest stall*: the longest run of whole seconds in which no transfer committed. With the "
          "router down nothing commits in either mode; after the restart 2PC must first resolve the "
          "transactions that were prepared when it died (their rows stay locked until then), while "
          "the saga engine compensates unfinished sagas without holding any lock.",
          "- *unknown outcome*: COMMITs whose connection broke before the answer (the crash); the bank "
          "then cannot check every account, only the total (*total exact*).",
          "- The bank verdict FAILs a run with unknown outcomes or errors on purpose: it is the strict "
          "demo check; here the columns say what happened.",
          "", "Chart: [throughput.svg](throughput.svg).", ""]
open(os.path.join(out, "report.md"), "w").write("\n".join(lines))

# ---- the chart: one panel per scenario, one line per mode ----
W, PH, ML, MR, MT, GAP = 860, 190, 60, 20, 40, 50
H = MT + len(SCENARIOS) * (PH + GAP)
colors = {"2pc": "#1f77b4", "saga": "#d62728"}
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       '<rect width="100%" height="100%" fill="white"/>',
       f'<text x="{ML}" y="22" font-size="15">transfers per second: 2PC (blue) and saga (red); '
       'red ticks: seconds with wrong audits (saga)</text>']
for i, (sc, title) in enumerate(SCENARIOS):
    top = MT + i * (PH + GAP)
    ymax = max([row[1] for mode, _ in MODES for row in runs[(sc, mode)]["timeline"]] + [1])
    xs = lambda s: ML + (W - ML - MR) * (s / max(secs, 1))
    ys = lambda v: top + PH - PH * v / ymax
    svg.append(f'<text x="{ML}" y="{top - 8}" font-size="13">{title}</text>')
    if sc == "crash":
        svg.append(f'<rect x="{xs(crash_at):.1f}" y="{top}" width="{xs(crash_at + down) - xs(crash_at):.1f}" '
                   f'height="{PH}" fill="#f3d3d3"/>')
        svg.append(f'<text x="{xs(crash_at) + 3:.1f}" y="{top + 14}" fill="#900">router down</text>')
    svg.append(f'<line x1="{ML}" y1="{top + PH}" x2="{W - MR}" y2="{top + PH}" stroke="black"/>')
    svg.append(f'<line x1="{ML}" y1="{top}" x2="{ML}" y2="{top + PH}" stroke="black"/>')
    svg.append(f'<text x="{ML - 6}" y="{top + 10}" text-anchor="end">{ymax:,}</text>')
    svg.append(f'<text x="{ML - 6}" y="{top + PH}" text-anchor="end">0</text>')
    svg.append(f'<text x="{W - MR}" y="{top + PH + 16}" text-anchor="end">{secs} s</text>')
    for mode, _ in MODES:
        tl = runs[(sc, mode)]["timeline"]
        if tl:
            pts = " ".join(f"{xs(row[0]):.1f},{ys(row[1]):.1f}" for row in tl)
            svg.append(f'<polyline fill="none" stroke="{colors[mode]}" stroke-width="2" points="{pts}"/>')
        if mode == "saga":
            for row in tl:
                if row[2] > 0:
                    x = xs(row[0])
                    svg.append(f'<line x1="{x:.1f}" y1="{top + PH}" x2="{x:.1f}" y2="{top + PH - 8}" '
                               f'stroke="{colors[mode]}" stroke-width="2"/>')
svg.append("</svg>")
open(os.path.join(out, "throughput.svg"), "w").write("\n".join(svg))
