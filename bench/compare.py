"""Teacher vs NOKD vs cGAN-KD students over several seeds, with the default params.

    python bench/compare.py                      # objects: teacher, nokd, cgankd
    python bench/compare.py --task regression    # rc: the same, plus MAE on seen / unseen angles
Each seed re-trains everything (teacher, GAN, fakes, students) with that seed; the data (and
its fixed test set) stay the same. Writes bench/results/compare_<source>.json and .md.
Reuses the pipeline's stage functions, so the numbers are those of `cgankd run`.

    --variant ft-real="student.mode=finetune student.fake_ratio=0"
adds a row: the cgankd student trained again with those overrides on the same teacher and fakes
(e.g. the control "NOKD fine-tuned on real data only"). ``--reuse`` takes stage results already
in the work folder (same seeds and params) for prepare, teacher, GAN and fakes instead of
re-training them; students always train.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from cgankd.base.io import write_json, write_text
from cgankd.config import load_config
from cgankd.pipeline.runner import reuse_or_run
from cgankd.pipeline.spec import stage, stage_calls
from cgankd.task import task_of

ROW_KEY = {"train-teacher": "teacher", "train-extractor": "extractor", "make-fakes": "fakes"}  # students: method

ROOT = Path(__file__).resolve().parents[1]


def stat(vals: list[float]) -> dict:
    a = np.array(vals, float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "values": a.round(3).tolist()}


def columns(task: str) -> list[str]:
    k = task_of(task).metric
    return [f"test_{k}", f"test_last_{k}"] + (["test_mae_seen", "test_mae_unseen"] if task == "regression" else [])


def summarize(rows: list[dict], task: str) -> dict:
    names = [n for n, v in rows[0].items() if isinstance(v, dict) and "params" in v and n != "extractor"]
    out = {}
    for n in names:
        for col in columns(task):
            out[f"{n}_{col}"] = stat([r[n][col] for r in rows])
        out[f"{n}_params"] = rows[0][n]["params"]
    if "fakes" in rows[0]:
        for key in ("burn_in_teacher_acc", "burn_in_teacher_mae", "kept_teacher_mae", "mean_label_shift"):
            if key in rows[0]["fakes"]:
                out[f"fakes_{key}"] = stat([r["fakes"][key] for r in rows])
    return out


def markdown(summary: dict, task: str, source: str, seeds: list[int], minutes: float, cfg,
             variants: dict[str, str], reuse: bool = False) -> str:
    k = task_of(task).metric
    unit = "%" if task == "classification" else " deg"
    arch = {"teacher": cfg.teacher.arch, "nokd": cfg.student.arch, "cgankd": cfg.student.arch}
    label = {"teacher": "teacher", "nokd": "NOKD student", "cgankd": "cGAN-KD student"}
    heads = [f"test {k}, best-val checkpoint (mean ± std)", f"test {k}, last step"]
    heads += ["test mae, seen angles", "test mae, unseen angles"] if task == "regression" else []
    how = "prepare/teacher/GAN/fakes reused from the work folder, students trained" if reuse else "in all"
    lines = [f"`{source}` ({task}), seeds {seeds}, {minutes:.0f} min {how}",
             "", "| model | params | " + " | ".join(heads) + " |", "|---|---:|" + "---:|" * len(heads)]
    for n in [key[: -len(f"_test_{k}")] for key in summary if key.endswith(f"_test_{k}")]:
        if n not in label:
            label[n], arch[n] = f"variant `{n}`: {variants.get(n, '')}", cfg.student.arch
        cells = [f"{summary[f'{n}_{c}']['mean']:.2f} ± {summary[f'{n}_{c}']['std']:.2f}{unit}" for c in columns(task)]
        lines.append(f"| {label[n]} {arch[n]} | {summary[f'{n}_params']:,} | " + " | ".join(cells) + " |")
    if task == "classification":
        gap = summary["teacher_test_acc"]["mean"] - summary["nokd_test_acc"]["mean"]
        lines.append(f"\nteacher - NOKD student: {gap:+.2f} points")
    else:
        t, s = summary["teacher_test_mae"]["mean"], summary["nokd_test_mae"]["mean"]
        lines.append(f"\nteacher MAE is {100 * (s - t) / s:.1f}% below the NOKD student's")
    for n in [key[: -len(f"_test_{k}")] for key in summary if key.endswith(f"_test_{k}")]:
        if n in ("teacher", "nokd"):
            continue
        diffs = [round(c - b, 2) for c, b in zip(summary[f"{n}_test_{k}"]["values"],
                                                 summary[f"nokd_test_{k}"]["values"], strict=True)]
        d = stat(diffs)
        lines.append(f"{n} - NOKD, paired by seed: {d['mean']:+.2f} ± {d['std']:.2f}{unit} ({diffs})")
    for key, v in summary.items():
        if key.startswith("fakes_"):
            lines.append(f"{key[6:]}: {v['mean']:.2f} ± {v['std']:.2f}")
    return "\n".join(lines) + "\n"


def base_overrides(args: argparse.Namespace, seed: int, methods: list[str]) -> list[str]:
    return [f"task={args.task}", f"seed={seed}", f"out_dir={args.out}/{args.task}/seed{seed}",
            f"student.methods=[{', '.join(methods)}]", *args.overrides]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="classification", choices=["classification", "regression"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=["nokd", "cgankd"])
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", default=str(ROOT / "bench" / "work"))
    ap.add_argument("--name", default="", help="suffix of the result files (e.g. for a variant's -S overrides)")
    ap.add_argument("--variant", action="append", default=[], metavar='NAME="KEY=VALUE ..."',
                    help="an extra cgankd student row trained with these overrides")
    ap.add_argument("--reuse", action="store_true", help="take results already in --out instead of re-running")
    args = ap.parse_args()
    methods = args.methods
    variants = dict(v.split("=", 1) for v in args.variant)
    os.environ["CGANKD_TRACKING"] = "off"
    t0 = time.perf_counter()
    rows = []
    for seed in args.seeds:
        cfg = load_config(ROOT / "params.yaml", base_overrides(args, seed, methods))
        row = {"seed": seed}
        for name, kwargs in stage_calls(cfg):  # the pipeline's own order and per-method calls
            if stage(name).upstream or stage(name).per_method:  # what trains: not export / evaluate / register
                key = kwargs.get("method", ROW_KEY.get(name, name))
                row[key] = reuse_or_run(cfg, name, args.reuse and "method" not in kwargs, **kwargs)
        for vname, extra in variants.items():  # last: they overwrite the cgankd student's files
            vcfg = load_config(ROOT / "params.yaml", [*base_overrides(args, seed, methods), *extra.split()])
            row[vname] = stage("train-student").run(vcfg, method="cgankd")
        rows.append(row)
        print(json.dumps({"seed": seed, **{k: v for k, v in row.items() if k != "seed"}}))
    minutes = (time.perf_counter() - t0) / 60
    summary = summarize(rows, args.task)
    source = cfg.source
    result = {"task": args.task, "source": source, "seeds": args.seeds, "minutes": round(minutes, 1),
              "overrides": args.overrides, "variants": variants, "reused": args.reuse, "summary": summary, "runs": rows,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores (CPU)"}
    name = f"compare_{source}" + (f"_{args.name}" if args.name else "")
    write_json(ROOT / "bench" / "results" / f"{name}.json", result)
    md = markdown(summary, args.task, source, args.seeds, minutes, cfg, variants, args.reuse)
    write_text(ROOT / "bench" / "results" / f"{name}.md", md)
    print(md)


if __name__ == "__main__":
    main()
