"""``cgankd``: one subcommand per stage, plus run / repro / data preview / models / config."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

from cgankd.base.errors import CgankdError
from cgankd.config import Config, load_config
from cgankd.task import task_of


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param (repeatable): KEY is dotted (gan.ccgan.kappa), VALUE is YAML: "
                   "-S filter.rho=0.7 -S gan.target_score=null -S compile=true -S student.methods=[nokd,cgankd]")


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

    serve_forever(Path(args.root), args.pg_port, args.mlflow_port, args.prefect_port)
    return 0


def _cluster(args: argparse.Namespace):
    from cgankd.sweeps.jobs import Cluster

    return Cluster(args.workers, args.address)


def _cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=0, help="run the independent jobs on a local Dask cluster of "
                   "N worker processes, through Prefect (default 0: one after another in this process)")
    p.add_argument("--address", default=None, help="run them on an existing Dask cluster, e.g. tcp://host:8786")


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
    print(f"cgankd: tracking-replay: {counts['calls']} calls logged to {tracking_uri()}, "
          f"{counts['runs_created']} runs created")
    return 0


def cmd_tracking_gc(args: argparse.Namespace) -> int:
    """End as KILLED the RUNNING runs whose process on this host is gone (cgankd/ops/reconcile.py)."""
    from cgankd.ops.tracking import reconcile_killed, require_mlflow, tracking_uri

    cfg = _config(args, runtime=False)
    require_mlflow("cgankd tracking-gc")
    ended = reconcile_killed(cfg, "cgankd tracking-gc")
    print(f"cgankd: tracking-gc: {len(ended)} run(s) of killed processes marked KILLED in {tracking_uri()}"
          + (f": {', '.join(ended)}" if ended else ""))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """The MLflow UI on the tracking store, and the address of the experiment's runs table."""
    from cgankd.ops import mlflow_ui
    from cgankd.ops.tracking import require_mlflow, tracking_uri

    cfg = _config(args, runtime=False)
    require_mlflow("cgankd ui")
    return mlflow_ui.serve(tracking_uri(), cfg.tracking.experiment, args.host, args.port)


def cmd_serve(args: argparse.Namespace) -> int:
    from cgankd.serve.app import serve

    cfg = _config(args, runtime=False)
    s = cfg.serve
    serve(_model_source(args, cfg), args.host or s.host, args.port or s.port,
          int((args.max_body_mb or s.max_body_mb) * 1024 * 1024), args.max_batch or s.max_batch,
          args.providers or s.providers, args.threads or s.threads, s.max_in_flight, s.body_timeout_s,
          s.token_file, s.allowed_hosts)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from cgankd.serve.batch import predict_to_csv
    from cgankd.serve.runtime import load_model

    cfg = _config(args, runtime=False)
    model = load_model(_model_source(args, cfg), args.providers or cfg.serve.providers,
                       args.threads or cfg.serve.threads)
    n = predict_to_csv(Path(args.input), Path(args.out), model, args.batch_size)
    print(f"wrote {args.out} ({n} predictions, model {model.info.get('uri')})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    import json

    from cgankd.ops.tracking import promote

    cfg = _config(args, runtime=False)
    margin = cfg.tracking.promotion_margin if args.margin is None else args.margin
    if margin < 0:
        raise CgankdError("--margin", f"must be >= 0, got {margin}")
    print("promote:", json.dumps(promote(args.name or cfg.model_name, args.version, margin, args.force)))
    return 0


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="a .onnx file, models:/<name>@<alias> or models:/<name>/<version> "
                   "(default: models:/<tracking.model_name>@<alias>)")
    p.add_argument("--alias", default="champion", help="alias of the configured model (default champion)")
    p.add_argument("--version", type=int, default=None, help="version of the configured model")
    p.add_argument("--providers", choices=["auto", "cpu", "cuda"], default=None,
                   help="onnxruntime providers (default: serve.providers)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: serve.threads)")


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


def cmd_config(args: argparse.Namespace) -> int:
    print(yaml.safe_dump(_config(args).to_dict(), sort_keys=False), end="")
    return 0


def _version() -> str:
    """cgankd's version and the torch / torchvision it runs on (read without importing them)."""
    from importlib.metadata import PackageNotFoundError, version

    from cgankd import __version__

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"cgankd {__version__} (torch {of('torch')}, torchvision {of('torchvision')})"


def _stage_about(stage: str) -> str:
    """The first paragraph of the stage module's docstring, less its ``name:`` prefix. Read from
    the source, not imported: the parser stays light (``cgankd serve`` needs no torch)."""
    import ast

    source = Path(__file__).parent / "stages" / f"{stage.replace('-', '_')}.py"
    doc = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8"))) or f"run the {stage} stage"
    return " ".join(doc.split("\n\n")[0].split()).removeprefix(f"{stage}:").strip()


def parser() -> argparse.ArgumentParser:
    from cgankd.pipeline.spec import TABLE

    ap = argparse.ArgumentParser(prog="cgankd", description=__doc__)
    ap.add_argument("--version", action="version", version=_version())
    sub = ap.add_subparsers(dest="command", required=True)
    for stage in TABLE:
        about = _stage_about(stage.name)
        p = sub.add_parser(stage.name, help=about.split(";")[0].split(",")[0], description=about)
        _common(p)
        if stage.per_method:
            p.add_argument("--method", default="nokd",
                           help="nokd, blkd, fitnet, vkd, cgankd, or cgankd+<distiller> (default nokd)")
        p.set_defaults(func=cmd_stage, stage=stage.name)
    p = sub.add_parser("run", help="every stage in order, in this process, under one MLflow run")
    _common(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("repro", help="`dvc repro` under one MLflow parent run (what `make demo` runs)")
    _common(p)
    p.add_argument("dvc_args", nargs="*", help="extra arguments for dvc repro")
    p.set_defaults(func=cmd_repro)
    p = sub.add_parser("dvc-yaml", help="write dvc.yaml from params.yaml: a stage per student method, the "
                       "code each stage imports and the params it reads")
    _common(p)
    p.add_argument("-o", "--output", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="exit 2 when the file is stale; write nothing")
    p.set_defaults(func=cmd_dvc_yaml)
    p = sub.add_parser("ablate", help="student on real + fakes processed with none / subsample / filter / both / "
                       "+ adjust, over seeds; an MLflow parent run with a child per (seed, variant)")
    _common(p)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=None,
                   help="default: all (none, subsample, filter, their pairs and the three steps); unknown names "
                   "are refused with the list")
    p.add_argument("--work", default=None, help="folder for per-seed outputs and results (default: <out_dir>/ablation)")
    p.add_argument("--reuse", action="store_true", help="keep upstream stage results already in the work folder")
    p.add_argument("--resume", action="store_true", help="skip (seed, variant) pairs already in the results file")
    p.add_argument("--extra", action="append", default=[], metavar='NAME="KEY=VALUE ..."',
                   help="another variant: these overrides on top of every processing step off")
    _cluster_args(p)
    p.set_defaults(func=cmd_ablate)
    p = sub.add_parser("compare", help="teacher -> student pairs x KD methods over seeds: a paper-style table; "
                       "an MLflow parent run with a child per (seed, pair, method)")
    _common(p)
    p.add_argument("--pairs", nargs="+", default=["resnet20:convnet_s"], metavar="TEACHER:STUDENT")
    p.add_argument("--methods", nargs="+", default=None,
                   help="nokd, blkd, fitnet, vkd, cgankd, cgankd+<distiller> (default: all eight)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--work", default=None, help="folder for per-seed outputs and results (default: <out_dir>/compare)")
    p.add_argument("--reuse", action="store_true", help="keep upstream stage results already in the work folder")
    p.add_argument("--resume", action="store_true", help="skip runs already in the results file")
    _cluster_args(p)
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("team-stack", help="PostgreSQL + an MLflow server on it (proxied artifacts) + a Prefect "
                       "server on it, on this machine for a try-out; prints the variables that point at them")
    p.add_argument("--root", default=".team-stack", help="where the databases and artifacts live (kept)")
    p.add_argument("--pg-port", type=int, default=5433)
    p.add_argument("--mlflow-port", type=int, default=5000)
    p.add_argument("--prefect-port", type=int, default=4200)
    p.set_defaults(func=cmd_team_stack)
    p = sub.add_parser("serve", help="HTTP server (FastAPI + onnxruntime) for the champion, an alias, "
                       "a version or a .onnx file: POST /predict, GET /healthz /ready /metadata, POST /reload")
    _common(p)
    _model_args(p)
    p.add_argument("--host", default=None, help="bind address (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: serve.port, 8000)")
    p.add_argument("--max-body-mb", type=float, default=None, help="request body limit (default: serve.max_body_mb)")
    p.add_argument("--max-batch", type=int, default=None, help="most inputs per request (default: serve.max_batch)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("tracking-replay", help="log what a run kept in <out_dir>/tracking-backlog.jsonl while "
                       "the tracking server was unreachable")
    _common(p)
    p.set_defaults(func=cmd_tracking_replay)
    p = sub.add_parser("tracking-gc", help="mark RUNNING runs whose process on this host is gone as KILLED")
    _common(p)
    p.set_defaults(func=cmd_tracking_gc)
    p = sub.add_parser("ui", help="the MLflow UI on the tracking store (MLFLOW_TRACKING_URI, default "
                       "sqlite:///mlflow.db), with the address of the runs table in the headline view")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(func=cmd_ui)
    p = sub.add_parser("predict", help="batch prediction: a folder of PNG/JPEG images or a .npy/.npz array -> CSV")
    _common(p)
    _model_args(p)
    p.add_argument("--input", "-i", required=True, help="folder of images, or a .npy / .npz file")
    p.add_argument("--out", "-o", required=True, help="CSV to write")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("promote", help="champion/challenger decision for a registered version "
                       "(champion only if its test metric beats the champion's by more than the margin)")
    _common(p)
    p.add_argument("--name", default=None, help="registered model (default: tracking.model_name)")
    p.add_argument("--version", type=int, default=None, help="version to decide on (default: the newest)")
    p.add_argument("--margin", type=float, default=None, help="default: tracking.promotion_margin")
    p.add_argument("--force", action="store_true", help="make it the champion whatever its metric "
                   "(a rollback, or a re-export of the same student)")
    p.set_defaults(func=cmd_promote)
    data = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("preview", help="write a PNG grid per class / label range")
    _common(p)
    p.add_argument("--split", default="train", choices=["train", "val", "test"])
    p.add_argument("--out", default=None)
    p.add_argument("--per-row", type=int, default=12)
    p.set_defaults(func=cmd_preview)
    p = data.add_parser("folder", help="write the data (e.g. the embedded renderer's) as image files: an "
                        "ImageFolder, or PNGs + train.csv/test.csv for regression (docs/own-data.md)")
    _common(p)
    p.add_argument("out", help="a new folder")
    p.set_defaults(func=cmd_folder)
    p = sub.add_parser("models", help="list the model zoo with parameter counts")
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--outputs", type=int, default=100, help="classes (1 for a regression head)")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("config", help="print the resolved config")
    _common(p)
    p.set_defaults(func=cmd_config)
    return ap


def main(argv: list[str] | None = None) -> int:
    from cgankd.ops.tracking import quiet_telemetry

    quiet_telemetry()
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except CgankdError as exc:
        print(f"cgankd: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk or an unwritable folder outside cgankd's own writes (MLflow, DVC)
        from cgankd.base.io import WRITE_ERRORS

        if exc.errno not in WRITE_ERRORS:
            raise
        print(f"cgankd: error: {exc.filename or 'a write'}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cgankd: interrupted (checkpoints kept; re-run to resume)", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # an install without this command's extra (pyproject.toml)
        extra = EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"cgankd: error: {args.command} needs {exc.name}, which is not installed: "
              f"pip install 'cgankd[{extra}]' (docs/install.md)", file=sys.stderr)
        return 2


# the extra (pyproject.toml) that brings each optional top-level module
EXTRA_OF = {**dict.fromkeys(("torch", "torchvision", "onnx", "onnxscript"), "train"),
            **dict.fromkeys(("onnxruntime", "fastapi", "uvicorn", "multipart", "prometheus_client"), "serve"),
            **dict.fromkeys(("mlflow", "dvc", "prefect", "sqlalchemy", "httpx", "matplotlib"), "track"),
            **dict.fromkeys(("dask", "distributed", "prefect_dask", "psycopg2"), "scale"),
            **dict.fromkeys(("h5py", "sklearn"), "data")}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
