"""Every side-by-side comparison in one command: tacitrec against implicit 0.7.3 and LightFM 1.17.

    python3 benches/compare/report.py [--threads 2] [--only knn,als,...] [--out-dir DIR] [--quick]

Runs recommend.py, knn.py, als.py, bpr_lmf.py and lightfm.py, each in its own process (this
interpreter, ``--json`` into a temporary folder, ``--threads N``), on the synthetic data and, when
../shared/data (or $TACITREC_DATA) exists, on MovieLens-100K and Last.fm-2K. It writes
DIR/RESULTS.md (machine, CPU, versions, threads, date, the command; one table per section:
speed, memory, quality; the file's other sections, from the scripts run separately, are kept)
and DIR/speedups.png (a bar per model pair and speed measurement; a ratio > 1 means tacitrec is
better), DIR defaulting to this folder. A script whose peer library
is missing or which fails is listed with the reason; what it measured before failing is kept.

``--quick`` is a smoke test of the whole report in a few minutes (a tenth of the synthetic data,
one repeat, few epochs): its numbers are not results, so it needs an ``--out-dir`` elsewhere.

Benchmark-only dependencies (not in pyproject.toml): ``pip install implicit==0.7.3 matplotlib``
and LightFM 1.17 (``pip install setuptools wheel numpy scipy && pip install
--no-build-isolation lightfm==1.17``).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import DATA

# script -> its peer library
SCRIPTS = {
    "recommend": "implicit",
    "knn": "implicit",
    "als": "implicit",
    "bpr_lmf": "implicit",
    "lightfm": "lightfm",
}
SECTIONS = {
    "speed": "Speed (synthetic data unless noted)",
    "memory": "Memory (peak resident memory of the fit above the data, forked process)",
    "quality": "Quality (80/20 split, seed 42, tacitrec's evaluator for both libraries)",
}


def kept_sections(path: str) -> str:
    """The sections of an existing RESULTS.md that this script does not write: everything from
    the first ``## `` heading that is not one of its own (the sections of the scripts run
    separately, and hand-maintained ones), kept as they are when the tables are regenerated."""
    try:
        with open(path) as fh:
            lines = fh.read().split("\n")
    except FileNotFoundError:
        return ""
    own = {f"## {title}" for title in SECTIONS.values()} | {"## Skipped"}
    for n, line in enumerate(lines):
        if line.startswith("## ") and line not in own:
            return "\n".join(lines[n:])
    return ""


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(name: str, args, tmp: str):
    """(records, None) or (records so far, the reason it did not finish)."""
    peer = SCRIPTS[name]
    if version(peer) == "not installed":
        return [], f"{peer} is not installed"
    path = os.path.join(tmp, f"{name}.json")
    cmd = [
        sys.executable,
        "-u",
        os.path.join(HERE, f"{name}.py"),
        "--json",
        path,
        "--threads",
        str(args.threads),
    ] + (["--quick"] if args.quick else [])
    with open(os.path.join(tmp, f"{name}.err"), "w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        for line in proc.stdout:
            print(f"  {name} | {line}", end="", flush=True)
        failed = proc.wait() != 0
        err.seek(0)
        lines = [x.strip() for x in err if x.strip()]
    records = []
    if os.path.exists(path):
        with open(path) as fh:
            records = json.load(fh)
    return records, (lines[-1] if lines else f"exit status {proc.returncode}") if failed else None


def ratio(r):
    """> 1 where tacitrec is better: peer / tacitrec for times and memory, tacitrec / peer for
    throughput and quality; None without a peer value."""
    if not r["peer"] or not r["tacitrec"]:
        return None
    return r["tacitrec"] / r["peer"] if r["higher_is_better"] else r["peer"] / r["tacitrec"]


def fmt(value, metric: str) -> str:
    if value is None:
        return "-"
    if metric == "seconds":
        return f"{value:,.0f} s" if value >= 100 else f"{value:.3g} s"
    if metric == "users_per_s":
        return f"{value:,.0f} users/s"
    if metric in ("peak_mb", "mb"):
        return f"{value:,.1f} MB"
    return f"{value:.4f}"


def fmt_ratio(r, section: str) -> str:
    if r is None:
        return "-"
    return f"{r:.3f}x" if section == "quality" else f"{r:.1f}x" if r < 10 else f"{r:.0f}x"


def markdown(records, failures, meta, quick: bool) -> str:
    out = ["# tacitrec against implicit and LightFM", ""]
    if quick:
        out += [
            "**Quick smoke test (`--quick`): a tenth of the data, one repeat, few epochs. "
            "These numbers are not results.**",
            "",
        ]
    out += [f"Generated by `{meta['command']}`; do not edit by hand.", "", "| | |", "|---|---|"] + [
        f"| {k} | {v} |" for k, v in meta.items() if k != "command"
    ]
    out += [
        "",
        "Ratio: above 1x tacitrec is better: peer / tacitrec for seconds and megabytes, "
        "tacitrec / peer for users per second, precision@10 and ndcg@10. Fit times and "
        "memory are taken in a forked process per fit, the peak being the resident memory "
        "above the data already in memory (the free heap the child inherits is returned to "
        "the OS first, so everything the fit allocates counts); times are the best of the "
        "repeats. The scripts' "
        "docstrings give the exact settings.",
        "",
        "![speed-ups](speedups.png)",
        "",
    ]
    by_section = collections.defaultdict(list)
    for r in records:
        by_section[r["section"]].append(r)
    for section, rows in sorted(
        by_section.items(),
        key=lambda kv: list(SECTIONS).index(kv[0]) if kv[0] in SECTIONS else len(SECTIONS),
    ):
        out += [
            f"## {SECTIONS.get(section, section)}",
            "",
            "| model | vs | data | measurement | tacitrec | peer | ratio |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            case = f"{r['metric']}, {r['case']}" if section == "quality" else r["case"]
            out.append(
                f"| {r['model']} | {r['peer_name']} | {r['data']} | {case} | "
                f"{fmt(r['tacitrec'], r['metric'])} | {fmt(r['peer'], r['metric'])} | "
                f"{fmt_ratio(ratio(r), section)} |"
            )
        out.append("")
    if failures:
        out += ["## Skipped", "", "| script | reason |", "|---|---|"]
        out += [f"| {name}.py | {reason.replace('|', '/')} |" for name, reason in failures.items()]
        out.append("")
    return "\n".join(out)


def chart(records, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = [r for r in records if r["section"] == "speed" and ratio(r)]
    if not rows:
        return
    common_data = collections.Counter(r["data"] for r in rows).most_common(1)[0][0]
    labels = [
        f"{r['model']}: {r['case']}" + ("" if r["data"] == common_data else f" [{r['data']}]")
        for r in rows
    ]
    values = [ratio(r) for r in rows]
    fig, ax = plt.subplots(figsize=(11, 0.3 * len(rows) + 1.6))
    y = range(len(rows))
    ax.barh(y, values, color=["tab:green" if v >= 1 else "tab:red" for v in values])
    ax.axvline(1.0, color="black", linewidth=1)
    for yi, v in zip(y, values):
        ax.text(v, yi, f" {fmt_ratio(v, 'speed')}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_xlim(min(0.5, min(values) / 1.5), max(values) * 2.5)
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("tacitrec speed-up, log scale (1x: as fast as the peer)", fontsize=8)
    fig.suptitle(f"{title}\ndata: {common_data} unless noted", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(SCRIPTS)}")
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke test with small data; needs --out-dir outside benches/compare",
    )
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(SCRIPTS)
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        sys.exit(f"unknown script(s) {unknown}; choose from {list(SCRIPTS)}")
    if args.quick and os.path.realpath(args.out_dir) == os.path.realpath(HERE):
        sys.exit("--quick results are not for committing: give --out-dir, e.g. /tmp/report_quick")
    if importlib.util.find_spec("matplotlib") is None:  # fail before the long run, not after
        sys.exit("the chart needs matplotlib: pip install matplotlib")

    command = " ".join(
        ["python3 benches/compare/report.py", f"--threads {args.threads}"]
        + ([f"--only {args.only}"] if args.only else [])
        + (["--quick", f"--out-dir {args.out_dir}"] if args.quick else [])
    )
    meta = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} logical CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} "
        f"GiB RAM, load average {os.getloadavg()[0]:.2f} at the start",
        "CPU": cpu_model(),
        "threads": args.threads,
        **{lib: version(lib) for lib in ("tacitrec", "implicit", "lightfm", "numpy")},
        "python": platform.python_version(),
        "real data": "MovieLens-100K, Last.fm-2K"
        if os.path.isdir(DATA)
        else f"absent ({DATA}): synthetic only",
    }
    records, failures, start = [], {}, time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(names, 1):
            print(f"[{i}/{len(names)}] {name}.py ...", flush=True)
            t = time.time()
            got, reason = run(name, args, tmp)
            records += got
            if reason:
                failures[name] = reason
            print(
                f"[{i}/{len(names)}] {name}.py: {len(got)} records in {time.time() - t:.0f} s"
                + (f"; not finished: {reason}" if reason else ""),
                flush=True,
            )
    meta["run time"] = f"{(time.time() - start) / 60:.1f} min"

    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "RESULTS.md")
    kept = kept_sections(out)
    with open(out, "w") as fh:
        fh.write(markdown(records, failures, meta, args.quick) + ("\n" + kept if kept else ""))
    with open(os.path.join(args.out_dir, "results.json"), "w") as fh:
        json.dump(dict(meta=meta, records=records, skipped=failures), fh, indent=1)
    peers = ", ".join(f"{lib} {meta[lib]}" for lib in ("implicit", "lightfm"))
    chart(
        records,
        os.path.join(args.out_dir, "speedups.png"),
        ("QUICK SMOKE TEST, not results. " if args.quick else "")
        + f"tacitrec {meta['tacitrec']} vs {peers}; {args.threads} threads, {meta['CPU']}, "
        f"{meta['date'][:10]}",
    )
    print(
        f"wrote {args.out_dir}/RESULTS.md, speedups.png and results.json "
        f"({len(records)} records, {len(failures)} scripts not finished)"
    )


if __name__ == "__main__":
    main()
