"""What each ``cgankd`` subcommand does: a thin call of a stage, the pipeline, a sweep, the
registry, the server or a data tool (the parser is ``cgankd.cli.parser``)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

from cgankd.base.errors import CgankdError
from cgankd.base.redact import redact
from cgankd.cli.root import refuse_root
from cgankd.config import Config, load_config
from cgankd.task import task_of


def _config(args: argparse.Namespace, runtime: bool = True) -> Config:
    path = args.params if Path(args.params).is_file() or args.params != "params.yaml" else None
    return load_config(path, args.overrides, runtime)


def cmd_stage(args: argparse.Namespace) -> int:
    """One stage; under ``torchrun`` (train-teacher/-extractor/-gan/-student) one rank of the job."""
    from cgankd.compute import distributed
    from cgankd.pipeline.runner import run_stage

    cfg = _config(args)
    _check_dvc_graph(cfg)
    kwargs = {"method": args.method} if getattr(args, "method", None) else {}
    run_stage(cfg, args.stage, **kwargs)
    distributed.finish()
    return 0


def _check_dvc_graph(cfg: Config) -> None:
    """Run by DVC (``DVC_STAGE`` set): stop in one line when dvc.yaml was generated for other params
    (``dvc exp run -S student.methods=[...]`` would run a stale stage graph)."""
    root = os.environ.get("DVC_ROOT")
    if not os.environ.get("DVC_STAGE") or not root or not (Path(root) / "dvc.yaml").is_file():
        return
    from cgankd.pipeline import dvc_yaml

    why = dvc_yaml.stale_graph(cfg, Path(root) / "dvc.yaml")
    if why is not None:
        raise CgankdError("dvc.yaml", f"was generated for other params ({why}; student.methods="
                          f"{cfg.student.methods}): run `cgankd repro` (it regenerates dvc.yaml first), or "
                          "`cgankd dvc-yaml` before `dvc exp run`")


def cmd_run(args: argparse.Namespace) -> int:
    from cgankd.pipeline.runner import run_pipeline

    cfg = _config(args)
    run_pipeline(cfg)
    return 0


def cmd_repro(args: argparse.Namespace) -> int:
    """``dvc repro`` under one MLflow parent run: each stage process nests its run under it."""
    from cgankd.ops.tracking import pipeline_run, quiet_telemetry

    quiet_telemetry()
    cfg = _config(args)
    _sync_dvc_yaml(cfg)
    with pipeline_run(cfg, "dvc-repro"):  # a failure inside marks the parent failed, without a headline
        rc = subprocess.call(["dvc", "repro", *args.dvc_args])
        if rc != 0:
            raise CgankdError("dvc repro", f"failed with exit code {rc}")
    return 0


def _sync_dvc_yaml(cfg: Config) -> None:
    from cgankd.pipeline import dvc_yaml

    if Path("dvc.yaml").is_file() and dvc_yaml.write(cfg, Path("dvc.yaml")):
        print(f"cgankd: dvc.yaml regenerated for student.methods={cfg.student.methods}", file=sys.stderr)


def cmd_dvc_yaml(args: argparse.Namespace) -> int:
    """Write dvc.yaml from params.yaml (``--check``: exit 2 when it is stale, write nothing)."""
    from cgankd.pipeline import dvc_yaml

    cfg = _config(args, runtime=False)
    path = Path(args.output)
    if args.check:
        if not path.is_file() or path.read_text() != dvc_yaml.render(cfg):
            raise CgankdError(str(path), "is stale: run `cgankd dvc-yaml` to regenerate it")
        return 0
    print(f"{path}: {'written' if dvc_yaml.write(cfg, path) else 'already current'}")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from cgankd.sweeps.ablation import VARIANTS, parse_extra, run_ablation

    path = args.params if Path(args.params).is_file() or args.params != "params.yaml" else None
    work = args.work or str(load_config(path, args.overrides).path("ablation"))
    run_ablation(path, args.overrides, args.seeds, args.variants or list(VARIANTS), work, args.reuse, args.resume,
                 parse_extra(args.extra), _cluster(args))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from cgankd.sweeps.comparison import DEFAULT_METHODS, parse_pairs, run_compare

    path = args.params if Path(args.params).is_file() or args.params != "params.yaml" else None
    work = args.work or str(load_config(path, args.overrides).path("compare"))
    run_compare(path, args.overrides, parse_pairs(args.pairs), args.methods or DEFAULT_METHODS, args.seeds, work,
                args.reuse, args.resume, _cluster(args))
    return 0


def cmd_team_stack(args: argparse.Namespace) -> int:
    from cgankd.ops.team_stack import serve_forever

    refuse_root(args, "cgankd team-stack")
    serve_forever(Path(args.root), args.pg_port, args.mlflow_port, args.prefect_port, args.dav_port)
    return 0


def cmd_dvc_remote(args: argparse.Namespace) -> int:
    from cgankd.ops.dvc_remote import configure

    print(f"dvc remote: {configure(Path(args.repo))} (in {Path(args.repo) / '.dvc' / 'config.local'})")
    return 0


def _cluster(args: argparse.Namespace):
    from cgankd.sweeps.jobs import Cluster

    return Cluster(args.workers, args.address)


def _model_source(args: argparse.Namespace, cfg: Config) -> str:
    """MODEL (a .onnx path or models:/ URI), else the configured model at --alias / --version."""
    if args.model:
        return args.model
    if args.version is not None:
        return f"models:/{cfg.model_name}/{args.version}"
    return f"models:/{cfg.model_name}@{args.alias}"


def cmd_tracking_replay(args: argparse.Namespace) -> int:
    """Log what a run could not log while the tracking server was away (<out_dir>/tracking-backlog.jsonl)."""
    from cgankd.ops.backlog import NAME, replay
    from cgankd.ops.tracking import require_mlflow, tracking_uri

    cfg = _config(args, runtime=False)
    require_mlflow("cgankd tracking-replay")
    counts = replay(tracking_uri(), cfg.path(NAME))
    print(f"cgankd: tracking-replay: {counts['calls']} calls logged to {redact(tracking_uri())}, "
          f"{counts['runs_created']} runs created")
    return 0


def cmd_tracking_gc(args: argparse.Namespace) -> int:
    """End as KILLED the RUNNING runs whose process on this host is gone (cgankd/ops/reconcile.py)."""
    from cgankd.ops.tracking import reconcile_killed, require_mlflow, tracking_uri

    cfg = _config(args, runtime=False)
    require_mlflow("cgankd tracking-gc")
    ended = reconcile_killed(cfg, "cgankd tracking-gc")
    print(f"cgankd: tracking-gc: {len(ended)} run(s) of killed processes marked KILLED in {redact(tracking_uri())}"
          + (f": {', '.join(ended)}" if ended else ""))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """The MLflow UI on the tracking store, and the address of the experiment's runs table."""
    from cgankd.ops import mlflow_ui
    from cgankd.ops.tracking import require_mlflow, tracking_uri

    refuse_root(args, "cgankd ui")
    cfg = _config(args, runtime=False)
    require_mlflow("cgankd ui")
    return mlflow_ui.serve(tracking_uri(), cfg.tracking.experiment, args.host, args.port)


def cmd_serve(args: argparse.Namespace) -> int:
    import dataclasses

    from cgankd.serve.app import serve

    refuse_root(args, "cgankd serve")
    cfg = _config(args, runtime=False)
    s = cfg.serve
    flags = {"host": args.host, "port": args.port, "max_body_mb": args.max_body_mb, "max_batch": args.max_batch,
             "providers": args.providers, "threads": args.threads}  # a flag given overrides its param
    serve(_model_source(args, cfg), dataclasses.replace(s, **{k: v for k, v in flags.items() if v}))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from cgankd.serve.batch import predict_to_csv
    from cgankd.serve.runtime import load_model

    cfg = _config(args, runtime=False)
    model = load_model(_model_source(args, cfg), args.providers or cfg.serve.providers,
                       args.threads or cfg.serve.threads, cfg.serve.precision)
    n = predict_to_csv(Path(args.input), Path(args.out), model, args.batch_size)
    print(f"wrote {args.out} ({n} predictions, model {model.info.get('uri')})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    import json

    from cgankd.ops.model_registry import promote

    cfg = _config(args, runtime=False)
    margin = cfg.tracking.promotion_margin if args.margin is None else args.margin
    if margin < 0:
        raise CgankdError("--margin", f"must be >= 0, got {margin}")
    print("promote:", json.dumps(promote(args.name or cfg.model_name, args.version, margin, args.force)))
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from cgankd.data.prepared import load_prepared
    from cgankd.data.preview import save_grid
    from cgankd.stages.prepare import build

    cfg = _config(args)
    folder = cfg.path("prepared")
    data = load_prepared(folder) if (folder / "meta.json").is_file() and not args.overrides else build(cfg)
    split = data[args.split]
    out = Path(args.out or cfg.path("plots", f"preview_{data.meta.source}_{args.split}.png"))
    save_grid(out, split.images, split.labels, data.meta.task, data.meta.classes, per_row=args.per_row)
    print(f"wrote {out} ({len(split)} {args.split} images of {data.meta.source})")
    return 0


def cmd_folder(args: argparse.Namespace) -> int:
    from cgankd.data.folder import write_folder
    from cgankd.stages.prepare import build

    cfg = _config(args)
    data = build(cfg)
    counts = write_folder(data, Path(args.out))
    source = task_of(data.meta.task).file_source
    print(f"wrote {args.out}: {counts['train']} train and {counts['test']} test images of {data.meta.source} at "
          f"{data.meta.resolution} px; train on it with -S data.source={source} -S data.root={args.out} "
          f"-S data.resolution={data.meta.resolution}" + (" -S task=regression" if source == "csv" else ""))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import torch

    from cgankd.models import MODELS, build_model, count_params

    c, r, k = args.in_channels, args.resolution, args.outputs
    print(f"{'name':<14} {'family':<14} {f'params ({c}x{r}x{r}, {k} outputs)':>30} {'feature maps':>13}")
    for name in MODELS.names():
        model = build_model(name, c, k, r)
        with torch.no_grad():
            maps, _ = model.eval()(torch.zeros(1, c, r, r), is_feat=True)
        family = type(model.backbone).__module__.rsplit(".", 1)[-1]
        print(f"{name:<14} {family:<14} {count_params(model):>30,} {len(maps):>13}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """A dry run of the config (cgankd/pipeline/plan.py): read, never trained or written; a device
    named in it need not be here."""
    from cgankd.pipeline import plan

    cfg = _config(args, runtime=False)
    _, rows = plan.plan(cfg)
    memory, device = plan.device_memory(cfg, args.device_memory)
    print(plan.render(cfg, rows, memory, device))
    plan.check(rows, memory)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """The resolved config, or (``--schema``) the JSON Schema of params.yaml."""
    if args.schema:
        from cgankd.config.json_schema import render

        print(render(), end="")
        return 0
    print(yaml.safe_dump(_config(args).to_dict(), sort_keys=False), end="")
    return 0
