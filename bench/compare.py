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
from cgankd.stages.common import metric_key
from cgankd.stages.registry import STAGES, stage_calls

TRAINING = {"prepare", "train-teacher", "train-gan", "make-fakes", "train-student"}  # no export/registry
ROW_KEY = {"train-teacher": "teacher", "make-fakes": "fakes"}  # train-student rows go by method

ROOT = Path(__file__).resolve().parents[1]


def summarize(rows: list[dict], task: str) -> dict:
    k = metric_key(task)
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
    k = metric_key(task)
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
        row = {"seed": seed}
        for name, kwargs in stage_calls(cfg):  # the pipeline's own order and per-method calls
            if name in TRAINING:
                result = STAGES.get(name)(cfg, **kwargs)
                row[kwargs.get("method", ROW_KEY.get(name, name))] = result
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
