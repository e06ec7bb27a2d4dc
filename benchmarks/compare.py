#!/usr/bin/env python3
"""Two xmlnest trees side by side: is a change faster or slower than the tree before it?

    python benchmarks/compare.py OLD_TREE NEW_TREE [--files N] [--rounds N] [--runs N]

Each tree is run as ``env PYTHONPATH=TREE python -m xmlnest`` (this interpreter), on the
same inputs as ``run.py`` (the corpus's x86 domains, or synthesised ones), with the runs
of the two interleaved round by round, so that the machine's load falls on both alike.
Rows: pipe latency (one domain that needs the edit, validated), bulk ``--check`` with
``--jobs 1`` and ``--jobs 2``, and ``-i --jobs 1`` (on a fresh copy each run). Prints a
Markdown table of medians and the ratio new/old.
Uses run.py's helpers; the standard library and lxml only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (benchmarks/run.py, beside this file)


def in_place(
    cmd: dict[str, list[str]], folder: Path, args: argparse.Namespace, env: dict[str, str]
) -> dict[str, list[run.Run]]:
    """``-i --jobs 1`` on a fresh copy of ``folder`` each run (copied and synced first,
    untimed), the two trees in a rotating order."""
    out: dict[str, list[run.Run]] = {k: [] for k in cmd}
    names = list(cmd)
    for i in range(args.rounds):
        for name in names[i % 2 :] + names[: i % 2]:
            copy = folder.parent / f"copy-{name}-{i}"
            shutil.copytree(folder, copy)
            os.sync()
            line = [*cmd[name], "--arch", "intel", "-i", "-q", "--jobs", "1", str(copy)]
            out[name].append(run.measure(line, env=env))
            shutil.rmtree(copy)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("old", type=Path, help="the tree before (a checkout or worktree)")
    ap.add_argument("new", type=Path, help="the tree after")
    ap.add_argument("--files", type=int, default=5000, help="bulk file count (default 5000)")
    ap.add_argument("--rounds", type=int, default=7, help="bulk rounds (default 7)")
    ap.add_argument("--runs", type=int, default=41, help="pipe runs per tree (default 41)")
    ap.add_argument(
        "--rows",
        default="pipe,check1,check2,inplace",
        help="which rows, comma-separated (default: pipe,check1,check2,inplace)",
    )
    args = ap.parse_args(argv)
    wanted = set(args.rows.split(","))
    schema = run.find_schema(None)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    cmd = {k: ["env", f"PYTHONPATH={t}", sys.executable, "-m", "xmlnest"] for k, t in trees.items()}
    with tempfile.TemporaryDirectory(prefix="xmlnest-compare-") as tmp:
        work = Path(tmp)
        # Each tree's own __pycache__ (written by the warm-up runs), as an installed copy has.
        env = dict(os.environ, XMLNEST_SCHEMA_DIR=str(schema.parent))
        one = work / "one.xml"
        one.write_bytes(run.synth(0))
        bases = run.corpus_bases() or [run.synth(i, c) for i, c in enumerate(run.CPUS)]
        bases = run.accepted(cmd["old"], bases, work, env, [])
        folder = work / "bulk"
        run.fill(folder, bases, args.files)
        rows = []
        if "pipe" in wanted:
            pipe = run.interleaved(
                {k: ([*c, "--arch", "intel", str(one)], None) for k, c in cmd.items()},
                args.runs,
                env,
            )
            rows.append(("pipe latency, 1 file (median)", pipe, 1000.0, "ms"))
        for jobs in [j for j in ("1", "2") if f"check{j}" in wanted]:
            bulk = run.interleaved(
                {
                    k: ([*c, "--arch", "intel", "--check", "-q", "--jobs", jobs, str(folder)], None)
                    for k, c in cmd.items()
                },
                args.rounds,
                env,
            )
            rows.append((f"bulk {args.files} files, --check, --jobs {jobs}", bulk, 1.0, "s"))
        if "inplace" in wanted:
            done = in_place(cmd, folder, args, env)
            rows.append((f"bulk {args.files} files, -i, --jobs 1", done, 1.0, "s"))
    print(f"## old {trees['old']} vs new {trees['new']}\n")
    print(f"- {run.loadavg()} (load average at the end); inputs: {len(bases)} bases\n")
    print("| measurement | old | new | new / old | spread old, new (IQR) |")
    print("|---|---|---|---|---|")
    for what, runs, scale, unit in rows:
        med = {k: statistics.median(r.wall for r in v) * scale for k, v in runs.items()}
        iqr = {}
        for k, v in runs.items():
            q = statistics.quantiles([r.wall * scale for r in v], n=4)
            iqr[k] = q[2] - q[0]
        assert all(r.rc in (0, 1) for v in runs.values() for r in v), f"{what}: a run failed"
        print(
            f"| {what} | {med['old']:.1f} {unit} | {med['new']:.1f} {unit} | "
            f"{med['new'] / med['old']:.3f} | {iqr['old']:.1f}, {iqr['new']:.1f} {unit} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
