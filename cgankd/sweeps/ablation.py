"""``cgankd ablate``: what each fake-processing step is worth. For every seed the upstream stages
(data, teacher, extractor, GAN, NOKD student) run once; then for each variant make-fakes and the
cGAN-KD student run again with that processing, each as an MLflow child run of one parent.

Results are written after every seed, so an interrupted ablation resumes where it stopped
(``--resume``); ``--reuse`` takes upstream results already in the work folder. Seeds are
independent jobs: ``--workers`` / ``--address`` run them on a Dask cluster (cgankd.sweeps.jobs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cgankd.base.errors import CgankdError
from cgankd.config import load_config
from cgankd.ops.tracking import stage_run
from cgankd.pipeline.runner import call_stage, recorded, reuse_or_run
from cgankd.pipeline.spec import upstream_calls
from cgankd.sweeps.jobs import Cluster, Job
from cgankd.sweeps.sweep import Sweep, mean_std, run_sweep
from cgankd.task import task_of

OFF = {"subsample.enabled": "false", "filter.enabled": "false", "adjust.enabled": "false"}
VARIANTS: dict[str, dict[str, str]] = {
    "none": OFF,
    "subsample": {**OFF, "subsample.enabled": "true"},
    "filter": {**OFF, "filter.enabled": "true"},
    "subsample+filter": {**OFF, "subsample.enabled": "true", "filter.enabled": "true"},
    "filter+adjust": {**OFF, "filter.enabled": "true", "adjust.enabled": "true"},  # the regression default
    "subsample+filter+adjust": {"subsample.enabled": "true", "filter.enabled": "true", "adjust.enabled": "true"},
}
VARIED = ("make-fakes",)  # a variant processes the fakes its own way: the upstream stages less this
FAKE_KEYS = ("n_fakes", "n_groups_short", "acceptance_rate", "kept_fraction", "quality_raw_fid",
             "quality_final_fid", "quality_final_intra_fid", "quality_final_label_score", "quality_final_diversity")


def table(result: dict[str, Any]) -> str:
    """Markdown: one row per variant (plus NOKD and the teacher), mean ± std over seeds."""
    task, rows = result["task"], result["rows"]
    k = task_of(task).metric
    unit = task_of(task).unit("")
    seeds = sorted({r["seed"] for r in rows})
    base = {r["seed"]: r for r in result["baselines"]}
    lines = [f"`{result['source']}` ({task}), seeds {seeds}, {result['minutes']:.0f} min; overrides: "
             f"{' '.join(result['overrides']) or 'none'}", "",
             f"| fakes processed with | val {k} | test {k} | test {k} - NOKD (paired) | fakes kept | "
             "acceptance | FID raw -> final | Intra-FID final | label score final | diversity final |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    fmt = mean_std
    for who in ("teacher", "nokd"):
        vals = [base[s][who] for s in seeds if s in base]
        lines.append(f"| {who.upper() if who == 'nokd' else 'teacher'} (no fakes) | "
                     f"{fmt([v[f'val_{k}'] for v in vals])}{unit} | {fmt([v[f'test_{k}'] for v in vals])}{unit} | "
                     "| | | | | | |")
    for name in result["variants"]:
        vr = [r for r in rows if r["variant"] == name]
        if not vr:
            continue
        diff = [r["student"][f"test_{k}"] - base[r["seed"]]["nokd"][f"test_{k}"] for r in vr]
        f = [r["fakes"] for r in vr]
        lines.append(
            f"| {name} | {fmt([r['student'][f'val_{k}'] for r in vr])}{unit} | "
            f"{fmt([r['student'][f'test_{k}'] for r in vr])}{unit} | {fmt(diff)} | "
            f"{np.mean([x['n_fakes'] for x in f]):.0f} | {np.mean([x['acceptance_rate'] for x in f]):.3f} | "
            f"{fmt([x['quality_raw_fid'] for x in f], 1)} -> {fmt([x['quality_final_fid'] for x in f], 1)} | "
            f"{fmt([x['quality_final_intra_fid'] for x in f], 1)} | "
            f"{fmt([x['quality_final_label_score'] for x in f])} | "
            f"{fmt([x['quality_final_diversity'] for x in f])} |")
    for name, over in result.get("definitions", {}).items():
        if name not in VARIANTS:
            added = " ".join(f"{k}={v}" for k, v in over.items() if k not in OFF)
            lines.append(f"\n`{name}`: every step off, plus {added}")
    return "\n".join(lines) + "\n"


def headline(result: dict[str, Any]) -> dict[str, float]:
    """For the parent run: the teacher's, NOKD's and each variant's test metric, and each variant's
    paired difference to NOKD, as means over the seeds run so far."""
    k = task_of(result["task"]).metric
    base = {b["seed"]: b for b in result["baselines"]}
    out = {f"{who}_test_{k}": float(np.mean([b[who][f"test_{k}"] for b in base.values()]))
           for who in ("teacher", "nokd") if base}
    for name in result["variants"]:
        vr = [r for r in result["rows"] if r["variant"] == name]
        if vr:
            out[f"{name}/test_{k}"] = float(np.mean([r["student"][f"test_{k}"] for r in vr]))
            out[f"{name}/minus_nokd_test_{k}"] = float(np.mean(
                [r["student"][f"test_{k}"] - base[r["seed"]]["nokd"][f"test_{k}"] for r in vr if r["seed"] in base]))
    return out


def parse_extra(texts: list[str]) -> dict[str, dict[str, str]]:
    """``['few="fakes.n_per_class=8 filter.enabled=false"']`` -> {"few": {"fakes.n_per_class": "8", ...}};
    an extra variant starts from every step off."""
    out = {}
    for text in texts:
        name, _, body = text.partition("=")
        pairs = [p.partition("=") for p in body.strip().strip('"').split()]
        if not name or not pairs or any(not k or not sep for k, sep, _ in pairs):
            raise CgankdError(f"extra variant {text!r}", 'expected NAME="KEY=VALUE KEY=VALUE"')
        out[name] = {**OFF, **{k: v for k, _, v in pairs}}
    return out


def seed_job(params: str | None, overrides: list[str], seed: int, work: str, reuse: bool,
             variants: dict[str, dict[str, str]]) -> dict[str, Any]:
    """One seed: the upstream stages and NOKD, then make-fakes and the cGAN-KD student per variant
    (the variants share the seed's folder, so they run one after another)."""
    task = load_config(params, overrides).task
    seed_over = [*overrides, f"seed={seed}", f"out_dir={Path(work) / task / f'seed{seed}'}",
                 "student.methods=[nokd, cgankd]"]
    cfg = load_config(params, seed_over)
    for name in upstream_calls(cfg):
        if name not in VARIED:
            reuse_or_run(cfg, name, reuse)
    nokd = reuse_or_run(cfg, "train-student", reuse, method="nokd")
    k = task_of(cfg.task).metric
    rows = []
    for name, over in variants.items():
        vcfg = load_config(params, [*seed_over, *(f"{key}={v}" for key, v in over.items())])
        with stage_run(vcfg, f"seed{seed}/{name}") as tracker:
            tracker.set_tags({"cgankd.sweeps.ablation.variant": name, "cgankd.seed": str(seed)})
            fakes = call_stage(vcfg, "make-fakes", tracker)
            student = call_stage(vcfg, "train-student", tracker, method="cgankd")
            tracker.log_metrics({f"delta_test_{k}_vs_nokd": student[f"test_{k}"] - nokd[f"test_{k}"]})
        rows.append({"seed": seed, "variant": name, "student": student,
                     "fakes": {x: fakes.get(x, float("nan")) for x in FAKE_KEYS}})
        print(f"ablation seed {seed} {name}: test {k} {student[f'test_{k}']:.3f} (NOKD {nokd[f'test_{k}']:.3f})")
    return {"baseline": {"seed": seed, "nokd": nokd, "teacher": recorded(cfg, "train-teacher")}, "rows": rows}


def run_ablation(params: str | Path | None, overrides: list[str], seeds: list[int], variants: list[str],
                 work: str | Path, reuse: bool = False, resume: bool = False,
                 extra: dict[str, dict[str, str]] | None = None, cluster: Cluster = Cluster()) -> dict[str, Any]:
    """``extra``: more named variants (overrides on top of every step off), e.g. a control with
    as few unprocessed fakes as subsampling keeps. ``cluster``: where the seeds run (cgankd.sweeps.jobs);
    a seed's results are saved when all its variants are done."""
    known = {**VARIANTS, **(extra or {})}
    variants = [*variants, *(v for v in (extra or {}) if v not in variants)]
    for v in variants:
        if v not in known:
            raise CgankdError(f"variant {v!r}", f"unknown; choose from {', '.join(VARIANTS)}")
    base_cfg = load_config(params, overrides)
    result: dict[str, Any] = {"task": base_cfg.task, "source": base_cfg.source, "overrides": overrides,
                              "variants": variants, "definitions": {v: known[v] for v in variants},
                              "seeds": seeds, "rows": [], "baselines": [], "minutes": 0.0}
    params = None if params is None else str(params)

    def resumed(result: dict[str, Any], old: dict[str, Any]) -> None:
        result["rows"], result["baselines"], result["minutes"] = old["rows"], old["baselines"], old["minutes"]
        result["variants"] = list(dict.fromkeys([*old["variants"], *variants]))
        result["definitions"] = {**old.get("definitions", {}), **result["definitions"]}

    def jobs(result: dict[str, Any]) -> list[Job]:
        have = {(r["seed"], r["variant"]) for r in result["rows"]}
        return [Job(f"seed{seed}", "cgankd.sweeps.ablation:seed_job", {
            "params": params, "overrides": overrides, "seed": seed, "work": str(work), "reuse": reuse,
            "variants": {n: known[n] for n in variants if (seed, n) not in have}})
            for seed in seeds if any((seed, n) not in have for n in variants)]

    def file(result: dict[str, Any], job: Job, res: dict[str, Any]) -> None:
        seed = res["baseline"]["seed"]
        if seed not in {b["seed"] for b in result["baselines"]}:
            result["baselines"].append(res["baseline"])
        result["rows"] += res["rows"]
        names = result["variants"]
        result["rows"].sort(key=lambda r: (r["seed"], names.index(r["variant"]) if r["variant"] in names
                                           else len(names)))

    return run_sweep(Sweep("ablation", resumed, jobs, file, table, headline), base_cfg, Path(work), result, resume,
                     cluster)
