"""``cgankd compare``: a paper-style table (cGAN-KD's Table 4) for teacher -> student pairs.

For every seed and teacher the upstream stages run once (data, teacher, extractor, GAN, fakes,
VKD generator, as the methods need them) in ``<work>/<task>/seed<S>/teacher-<T>``; then every
method trains each student of that teacher (``student.tag`` = the student's architecture, so
pairs sharing a teacher keep their own students), each as an MLflow child run of one parent.
Results are written after every run (``--resume`` continues); ``--reuse`` takes upstream results
already in the work folder.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.config import load_config
from cgankd.kd import DISTILLERS, all_methods, label, parse_method
from cgankd.ops.tracking import stage_run
from cgankd.pipeline.runner import call_stage, recorded, reuse_or_run
from cgankd.pipeline.spec import ordered_methods, upstream_calls
from cgankd.sweeps.jobs import Cluster, Job
from cgankd.sweeps.sweep import Sweep, mean_std, run_sweep
from cgankd.task import task_of

DEFAULT_METHODS = all_methods()  # every distiller, without and with the fakes


def parse_pairs(texts: list[str]) -> list[tuple[str, str]]:
    """``["resnet20:convnet_s"]`` -> [("resnet20", "convnet_s")]; architectures checked in the zoo."""
    from cgankd.models import MODELS

    pairs = []
    for text in texts:
        teacher, sep, student = text.partition(":")
        if not sep or not teacher or not student:
            raise CgankdError(f"pair {text!r}", "expected TEACHER:STUDENT, e.g. resnet20:convnet_s")
        for arch in (teacher, student):
            MODELS.get(arch)
        pairs.append((teacher, student))
    return pairs


def paired(rows: list[dict[str, Any]], t: str, s: str, m: str, k: str) -> tuple[list[float], list[float]]:
    """Method ``m``'s test metric for ``t -> s`` in every seed run, and its difference to NOKD
    paired by seed."""
    pr = [r for r in rows if (r["teacher"], r["student"]) == (t, s)]
    base = {r["seed"]: r["metrics"][f"test_{k}"] for r in pr if r["method"] == "nokd"}
    mr = [r for r in pr if r["method"] == m]
    return ([r["metrics"][f"test_{k}"] for r in mr],
            [r["metrics"][f"test_{k}"] - base[r["seed"]] for r in mr if r["seed"] in base])


def table(result: dict[str, Any]) -> str:
    """Markdown: rows = pairs, columns = methods; test metric of the best-validation checkpoint,
    mean ± std over seeds; then the paired difference to NOKD and the training time (median, robust
    to one run that shared the CPU)."""
    k = task_of(result["task"]).metric
    rows, methods = result["rows"], result["methods"]
    seeds = sorted({r["seed"] for r in rows})
    head = "| teacher -> student | teacher | " + " | ".join(label(m) for m in methods) + " |"
    rule = "|---|---:|" + "---:|" * len(methods)
    lines = [f"`{result['source']}` ({result['task']}), test {k} (best-validation checkpoint), mean ± std over "
             f"seeds {seeds}; {result['minutes']:.0f} min on {result['machine']}; overrides: "
             f"{' '.join(result['overrides']) or 'none'}", "", head, rule]
    deltas, times = [], []
    for t, s in (tuple(p) for p in result["pairs"]):
        pr = [r for r in rows if r["teacher"] == t and r["student"] == s]
        teach = [result["teachers"][f"{r_seed}/{t}"][f"test_{k}"] for r_seed in seeds
                 if f"{r_seed}/{t}" in result["teachers"]]
        cells, dcells, tcells = [], [], []
        for m in methods:
            mr = [r for r in pr if r["method"] == m]
            vals, d = paired(rows, t, s, m, k)
            cells.append(mean_std(vals) if vals else "")
            dcells.append(mean_std(d) if d and m != "nokd" else "")
            tcells.append(f"{np.median([r['metrics']['train_seconds'] for r in mr]) / 60:.1f}" if mr else "")
        name = f"{t} -> {s} ({pr[0]['metrics']['params']:,} params)" if pr else f"{t} -> {s}"
        lines.append(f"| {name} | {mean_std(teach) if teach else ''} | " + " | ".join(cells) + " |")
        deltas.append(f"| {t} -> {s} | | " + " | ".join(dcells) + " |")
        times.append(f"| {t} -> {s} | | " + " | ".join(tcells) + " |")
    lines += ["", "Difference to NOKD, paired by seed:", "", head, rule, *deltas,
              "", "Student training time per run (minutes, median over seeds):", "", head, rule, *times]
    return "\n".join(lines) + "\n"


def headline(result: dict[str, Any]) -> dict[str, float]:
    """For the parent run: each pair's teacher and method test metric, and each method's paired
    difference to NOKD, as means over the seeds run so far (``resnet20-convnet_s/cgankd_test_acc``)."""
    k, rows, out = task_of(result["task"]).metric, result["rows"], {}
    for t, s in (tuple(p) for p in result["pairs"]):
        pair = f"{t}-{s}"
        teach = [v[f"test_{k}"] for key, v in result["teachers"].items() if key.split("/")[1] == t]
        if teach:
            out[f"{pair}/teacher_test_{k}"] = float(np.mean(teach))
        for m in result["methods"]:
            vals, d = paired(rows, t, s, m, k)
            if vals:
                out[f"{pair}/{m}_test_{k}"] = float(np.mean(vals))
            if d and m != "nokd":
                out[f"{pair}/{m}_minus_nokd_test_{k}"] = float(np.mean(d))
    return out


def upstream_job(params: str | None, overrides: list[str], reuse: bool) -> dict[str, Any]:
    """One seed and teacher: the upstream stages the methods need, run once and shared by path."""
    cfg = load_config(params, overrides)
    done = {name: reuse_or_run(cfg, name, reuse) for name in upstream_calls(cfg)}
    return {"upstream": done, "teacher": recorded(cfg, "train-teacher")}


def student_job(params: str | None, overrides: list[str], name: str, tags: dict[str, str],
                method: str) -> dict[str, Any]:
    """One student: an MLflow child run of the comparison's parent."""
    cfg = load_config(params, overrides)
    with stage_run(cfg, name) as tracker:
        tracker.set_tags(tags)
        return call_stage(cfg, "train-student", tracker, method=method)


def plan(params: str | None, overrides: list[str], pairs: list[tuple[str, str]], methods: list[str],
         seeds: list[int], work: Path, task: str, have: set[tuple], reuse: bool) -> list[Job]:
    """The jobs still to run: per seed and teacher the upstream stages, then each student method
    (a method with fakes in fine-tune mode waits for its distiller without fakes)."""
    jobs: list[Job] = []
    teachers = list(dict.fromkeys(t for t, _ in pairs))
    for seed in seeds:
        for teacher in teachers:
            t_over = [*overrides, f"seed={seed}", f"teacher.arch={teacher}",
                      f"out_dir={work / task / f'seed{seed}' / f'teacher-{teacher}'}",
                      f"student.methods=[{', '.join(methods)}]"]
            cfg = load_config(params, t_over)
            up = f"seed{seed}/{teacher}"
            todo = [(s, m) for t, s in pairs if t == teacher for m in methods if (seed, t, s, m) not in have]
            if not todo:
                continue
            gpu = cfg.runtime.device.type == "cuda"
            jobs.append(Job(up, "cgankd.sweeps.comparison:upstream_job", {"params": params, "overrides": t_over,
                                                                 "reuse": reuse}, gpu=gpu,
                            about={"seed": seed, "teacher": teacher}))
            for student, method in todo:
                m = parse_method(method, DISTILLERS.names())
                base = f"{up}->{student}/{m.distiller}"
                after = (up, base) if m.fakes and cfg.student.mode == "finetune" and \
                    any(j.key == base for j in jobs) else (up,)
                jobs.append(Job(f"{up}->{student}/{method}", "cgankd.sweeps.comparison:student_job", {
                    "params": params, "overrides": [*t_over, f"student.arch={student}", f"student.tag={student}"],
                    "name": f"seed{seed}/{teacher}->{student}/{method}", "method": method,
                    "tags": {"cgankd.sweeps.comparison.pair": f"{teacher}->{student}", "cgankd.seed": str(seed)}},
                    after, gpu, about={"seed": seed, "teacher": teacher, "student": student, "method": method}))
    return jobs


def run_compare(params: str | Path | None, overrides: list[str], pairs: list[tuple[str, str]],
                methods: list[str], seeds: list[int], work: str | Path, reuse: bool = False,
                resume: bool = False, cluster: Cluster = Cluster()) -> dict[str, Any]:
    """``cluster``: where the jobs run (in this process by default; cgankd.sweeps.jobs)."""
    methods = ordered_methods(list(dict.fromkeys(methods)))
    base_cfg = load_config(params, [*overrides, f"student.methods=[{', '.join(methods)}]"])  # validates
    params = None if params is None else str(params)
    work = Path(work)
    result: dict[str, Any] = {"task": base_cfg.task, "source": base_cfg.source, "overrides": overrides,
                              "pairs": [list(p) for p in pairs], "methods": methods, "seeds": seeds,
                              "rows": [], "teachers": {}, "upstream": {}, "minutes": 0.0,
                              "machine": f"{platform.machine()}, {os.cpu_count()} cores (CPU)"}
    order = {m: i for i, m in enumerate(methods)}
    pair_order = {tuple(p): i for i, p in enumerate(pairs)}

    def resumed(result: dict[str, Any], old: dict[str, Any]) -> None:
        for key in ("rows", "teachers", "upstream", "minutes"):
            result[key] = old[key]

    def jobs(result: dict[str, Any]) -> list[Job]:
        have = {(r["seed"], r["teacher"], r["student"], r["method"]) for r in result["rows"]}
        return plan(params, overrides, pairs, methods, seeds, work, base_cfg.task, have, reuse)

    def file(result: dict[str, Any], job: Job, res: dict[str, Any]) -> None:
        where = f"{job.about['seed']}/{job.about['teacher']}"
        if "method" not in job.about:  # the upstream stages of a seed and teacher
            for stage, r in res["upstream"].items():
                result["upstream"][f"{where}/{stage}"] = r
            result["teachers"][where] = res["teacher"]
        else:
            result["rows"].append({**job.about, "metrics": res})
            result["rows"].sort(key=lambda r: (r["seed"], pair_order.get((r["teacher"], r["student"]), 99),
                                               order.get(r["method"], 99)))

    return run_sweep(Sweep("compare", resumed, jobs, file, table, headline), base_cfg, work, result, resume, cluster)
