"""Teacher vs NOKD vs cGAN-KD students over several seeds, with the default params.

    python bench/compare.py                                   # objects: teacher, nokd, cgankd
    python bench/compare.py --task regression --methods nokd  # rc: the teacher-student gap
Each seed re-trains everything (teacher, GAN, fakes, students) with that seed; the data (and
its fixed test set) stay the same. Writes bench/results/compare_<source>.json and .md.
Reuses the pipeline's stage functions, so the numbers are those of `cgankd run`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from cgankd.config import load_config
from cgankd.io import write_json, write_text
from cgankd.stages.registry import STAGES

ROOT = Path(__file__).resolve().parents[1]


def summarize(rows: list[dict], task: str) -> dict:
    k = "acc" if task == "classification" else "mae"
    names = [n for n in ("teacher", "nokd", "cgankd") if n in rows[0]]
    out = {}
    for n in names:
        for split in ("test", "test_last"):
            vals = np.array([r[n][f"{split}_{k}"] for r in rows])
            std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
            out[f"{n}_{split}_{k}"] = {"mean": float(vals.mean()), "std": std, "values": vals.round(3).tolist()}
        out[f"{n}_params"] = rows[0][n]["params"]
    return out


def markdown(summary: dict, task: str, source: str, seeds: list[int], minutes: float, cfg) -> str:
    k = "acc" if task == "classification" else "mae"
    unit = "%" if task == "classification" else " deg"
    arch = {"teacher": cfg.teacher.arch, "nokd": cfg.student.arch, "cgankd": cfg.student.arch}
    label = {"teacher": "teacher", "nokd": "NOKD student", "cgankd": "cGAN-KD student"}
    lines = [f"`{source}` ({task}), seeds {seeds}, {minutes:.0f} min in all",
             "", f"| model | params | test {k}, best-val checkpoint (mean ± std) | test {k}, last step |",
             "|---|---:|---:|---:|"]
    for n in ("teacher", "nokd", "cgankd"):
        if f"{n}_test_{k}" not in summary:
            continue
        a, b = summary[f"{n}_test_{k}"], summary[f"{n}_test_last_{k}"]
        lines.append(f"| {label[n]} {arch[n]} | {summary[f'{n}_params']:,} | {a['mean']:.2f} ± {a['std']:.2f}{unit}"
                     f" | {b['mean']:.2f} ± {b['std']:.2f}{unit} |")
    if task == "classification":
        gap = summary["teacher_test_acc"]["mean"] - summary["nokd_test_acc"]["mean"]
        lines.append(f"\nteacher - NOKD student: {gap:+.2f} points")
    else:
        t, s = summary["teacher_test_mae"]["mean"], summary["nokd_test_mae"]["mean"]
        lines.append(f"\nteacher MAE is {100 * (s - t) / s:.1f}% below the NOKD student's")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="classification", choices=["classification", "regression"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=None, help="default: nokd cgankd (nokd for regression)")
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", default=str(ROOT / "bench" / "work"))
    args = ap.parse_args()
    methods = args.methods or (["nokd", "cgankd"] if args.task == "classification" else ["nokd"])
    os.environ["CGANKD_TRACKING"] = "off"
    t0 = time.perf_counter()
    rows = []
    for seed in args.seeds:
        cfg = load_config(ROOT / "params.yaml", [f"task={args.task}", f"seed={seed}",
                                                 f"out_dir={args.out}/{args.task}/seed{seed}",
                                                 f"student.methods=[{', '.join(methods)}]", *args.overrides])
        STAGES.get("prepare")(cfg)
        row = {"seed": seed, "teacher": STAGES.get("train-teacher")(cfg)}
        if "cgankd" in methods:
            STAGES.get("train-gan")(cfg)
            row["fakes"] = STAGES.get("make-fakes")(cfg)
        for m in methods:
            row[m] = STAGES.get("train-student")(cfg, method=m)
        rows.append(row)
        print(json.dumps({"seed": seed, **{k: v for k, v in row.items() if k != "seed"}}))
    minutes = (time.perf_counter() - t0) / 60
    summary = summarize(rows, args.task)
    source = cfg.source
    result = {"task": args.task, "source": source, "seeds": args.seeds, "minutes": round(minutes, 1),
              "overrides": args.overrides, "summary": summary, "runs": rows,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores (CPU)"}
    write_json(ROOT / "bench" / "results" / f"compare_{source}.json", result)
    md = markdown(summary, args.task, source, args.seeds, minutes, cfg)
    write_text(ROOT / "bench" / "results" / f"compare_{source}.md", md)
    print(md)


if __name__ == "__main__":
    main()
