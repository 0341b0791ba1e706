"""The curve that decides whether cGAN-KD can help: the raw fakes' relative label score (the
teacher's accuracy on them over its accuracy on real validation images; regression: its real MAE
over its MAE on fakes) against the student's gain over NOKD, at several GAN budgets of ONE GAN
trained on from its checkpoint (``gan.iterations`` is a cap: raising it trains on).

    python bench/effect_curve.py --name objects16 --budgets 1000 2000 4000 8000 \\
        -S data.render.resolution=16 -S gan.d_steps=4

At each budget: train-gan up to the budget (fakes from the best EMA generator so far), make-fakes,
then per student seed (``--student-seeds``, tags ``seed<s>``) the cgankd student fine-tuned from
that seed's NOKD student on real + fakes. Once per student seed: NOKD, and the control (the same
fine-tuning on real data alone, ``student.fake_ratio=0``, tag ``ctrl<s>``). Teacher, extractor and
data are trained once (seed 0); the student seeds vary only the student. Resumable: budgets
already in the results file are skipped (``--work`` keeps the stage outputs).
Writes bench/results/effect_<name>.json, .md and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from cgankd.base.io import read_json, write_json, write_text
from cgankd.config import load_config
from cgankd.config.layout import Layout
from cgankd.pipeline.runner import recorded
from cgankd.pipeline.spec import stage as stage_spec
from cgankd.task import task_of

ROOT = Path(__file__).resolve().parents[1]


def timed_stage(cfg, name: str, **kw) -> dict:
    t0 = time.time()
    out = stage_spec(name).run(cfg, **kw)
    print(f"effect: {name}{kw or ''} {time.time() - t0:.0f} s", flush=True)
    return out


def student(base: list[str], seed: int, tag: str, method: str, extra: list[str] = ()) -> dict:
    cfg = load_config(ROOT / "params.yaml", [*base, f"seed={seed}", f"student.tag={tag}", *extra])
    return recorded(cfg, "train-student", method) or timed_stage(cfg, "train-student", method=method)


def markdown(res: dict) -> str:
    k = res["metric"]
    better = "higher" if k == "acc" else "lower"
    lines = [f"# cGAN-KD effect vs fake quality: {res['name']}", "",
             f"{res['machine']}; overrides `{' '.join(res['overrides']) or '(none)'}`; teacher val_{k} "
             f"{res['teacher_val']:.2f}, test_{k} {res['teacher_test']:.2f}; student seeds {res['student_seeds']}.",
             f"NOKD test_{k} per seed: {', '.join(f'{v:.2f}' for v in res['nokd'])}; control (NOKD fine-tuned on "
             f"real only) minus NOKD: {', '.join(f'{v:+.2f}' for v in res['control_gain'])} "
             f"(mean {np.mean(res['control_gain']):+.2f}). Gains: test_{k} minus NOKD's ({better} is better).", "",
             "| GAN iterations | GAN minutes | watch relative score (best) | raw fakes relative score | "
             "fakes kept | cGAN-KD minus NOKD per seed | mean | beats NOKD | beats control |",
             "|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in res["rows"]:
        g = r["gain"]
        sign = 1 if k == "acc" else -1
        beats_n = sum(sign * v > 0 for v in g)
        beats_c = sum(sign * (v - c) > 0 for v, c in zip(g, res["control_gain"], strict=True))
        lines.append(f"| {r['iterations']} | {r['gan_minutes']:.1f} | {r['watch_relative']:.3f} | "
                     f"{r['raw_relative']:.3f} | {r['n_fakes']} | {', '.join(f'{v:+.2f}' for v in g)} | "
                     f"{np.mean(g):+.2f} | {beats_n}/{len(g)} | {beats_c}/{len(g)} |")
    return "\n".join(lines) + "\n"


def figure(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["rows"]
    x = [r["raw_relative"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, r in enumerate(rows):
        ax.scatter([x[i]] * len(r["gain"]), r["gain"], color="C0", alpha=0.4, s=14)
        ax.annotate(f"{r['iterations']} it", (x[i], float(np.mean(r["gain"]))), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.plot(x, [float(np.mean(r["gain"])) for r in rows], "o-", color="C0", label="cGAN-KD minus NOKD (mean)")
    ax.axhline(float(np.mean(res["control_gain"])), color="C1", ls="--", label="control minus NOKD (mean)")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("raw fakes' label score relative to the teacher's")
    ax.set_ylabel(f"test {res['metric']} gain over NOKD")
    ax.set_title(res["name"])
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--budgets", type=int, nargs="+", required=True, help="GAN iteration caps, rising")
    ap.add_argument("--student-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--work", type=Path, default=None, help="default bench/work/effect_<name>")
    ap.add_argument("-S", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    os.environ["CGANKD_TRACKING"] = "off"
    work = args.work or ROOT / "bench" / "work" / f"effect_{args.name}"
    base = [*args.overrides, f"out_dir={work}", "student.methods=[nokd,cgankd]"]
    results = ROOT / "bench" / "results" / f"effect_{args.name}.json"
    cfg = load_config(ROOT / "params.yaml", base)
    k = task_of(cfg.task).metric
    for name in ("prepare", "train-teacher", "train-extractor"):
        if recorded(cfg, name) is None:
            timed_stage(cfg, name)
    teacher = read_json(cfg.path("metrics", "teacher.json"))
    res = read_json(results) if results.is_file() else {}
    res.update({"name": args.name, "metric": k, "overrides": args.overrides, "student_seeds": args.student_seeds,
                "teacher_val": teacher[f"val_{k}"], "teacher_test": teacher[f"test_{k}"],
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {__import__('torch').__version__}"})
    res.setdefault("rows", [])
    nokd = [student(base, s, f"seed{s}", "nokd")[f"test_{k}"] for s in args.student_seeds]
    for s in args.student_seeds:  # the control fine-tunes the same NOKD student
        ctrl = cfg.path("students", f"ctrl{s}", "nokd")
        if not ctrl.exists():
            shutil.copytree(cfg.path("students", f"seed{s}", "nokd"), ctrl)
            shutil.copy(cfg.path("metrics", f"student_seed{s}_nokd.json"),
                        cfg.path("metrics", f"student_ctrl{s}_nokd.json"))
    res["nokd"] = nokd
    done = {r["iterations"] for r in res["rows"]}
    for budget in args.budgets:
        if budget in done:
            continue
        gcfg = load_config(ROOT / "params.yaml", [*base, f"gan.iterations={budget}"])
        g = timed_stage(gcfg, "train-gan")
        fk = timed_stage(gcfg, "make-fakes")
        if "control_gain" not in res:  # needs a fake set on disk (ignored at fake_ratio 0)
            res["control_gain"] = [student(base, s, f"ctrl{s}", "cgankd", ["student.fake_ratio=0"])[f"test_{k}"] - n
                                   for s, n in zip(args.student_seeds, nokd, strict=True)]
        gains = []
        for s, n in zip(args.student_seeds, nokd, strict=True):
            m = Layout(load_config(ROOT / "params.yaml", [*base, f"seed={s}", f"student.tag=seed{s}"])).path(
                "student_metrics", "cgankd")
            m.unlink(missing_ok=True)  # a new fake set: train the cgankd student again
            gains.append(student(base, s, f"seed{s}", "cgankd")[f"test_{k}"] - n)
        res["rows"].append({"iterations": g["iterations"], "budget": budget, "gan_minutes": g["minutes"],
                            "gan_stop": g["stop"], "watch_relative": g.get("best_relative_score", float("nan")),
                            "raw_relative": fk["raw_relative_label_score"], "n_fakes": fk["n_fakes"],
                            "quality_raw_label_score": fk["quality_raw_label_score"], "gain": gains})
        shutil.copy(cfg.path("gan", "quality.csv"), results.with_name(f"effect_{args.name}_gan_quality.csv"))
        write_json(results, res)
        write_text(results.with_suffix(".md"), markdown(res))
        figure(res, results.with_suffix(".png"))
        print(json.dumps(res["rows"][-1]), flush=True)


if __name__ == "__main__":
    main()
