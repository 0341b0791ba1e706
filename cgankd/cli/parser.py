"""The ``cgankd`` command line: one subcommand per stage of the stage table, plus run / repro /
sweeps / registry / serving / data tools. Light: building it imports neither torch nor MLflow."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from cgankd.cli import commands
from cgankd.cli.root import add_flag

if TYPE_CHECKING:
    from cgankd.pipeline.spec import Stage


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a param (repeatable): KEY is dotted (gan.ccgan.kappa), VALUE is YAML: "
                   "-S filter.rho=0.7 -S gan.target_score=null -S compile=true -S student.methods=[nokd,cgankd]")


def _cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=0, help="run the independent jobs on a local Dask cluster of "
                   "N worker processes, through Prefect (default 0: one after another in this process)")
    p.add_argument("--address", default=None, help="run them on an existing Dask cluster, e.g. tcp://host:8786")


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="a .onnx file, models:/<name>@<alias> or models:/<name>/<version> "
                   "(default: models:/<tracking.model_name>@<alias>)")
    p.add_argument("--alias", default="champion", help="alias of the configured model (default champion)")
    p.add_argument("--version", type=int, default=None, help="version of the configured model")
    p.add_argument("--providers", choices=["auto", "cpu", "cuda"], default=None,
                   help="onnxruntime providers (default: serve.providers)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: serve.threads)")


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


def _stage_about(stage: Stage) -> str:
    """The first paragraph of the stage module's docstring, less its ``name:`` prefix. Read from
    the source, not imported: the parser stays light (``cgankd serve`` needs no torch)."""
    import ast
    from importlib.util import find_spec

    source = Path(find_spec(stage.module).origin)  # finding it imports only cgankd.stages (a docstring)
    doc = ast.get_docstring(ast.parse(source.read_text(encoding="utf-8"))) or f"run the {stage.name} stage"
    return " ".join(doc.split("\n\n")[0].split()).removeprefix(f"{stage.name}:").strip()


def parser() -> argparse.ArgumentParser:
    from cgankd.pipeline.spec import TABLE

    ap = argparse.ArgumentParser(prog="cgankd", description="one subcommand per stage, plus run / repro / sweeps "
                                 "/ registry / serving / data tools")
    ap.add_argument("--version", action="version", version=_version())
    sub = ap.add_subparsers(dest="command", required=True)
    for stage in TABLE:
        about = _stage_about(stage)
        p = sub.add_parser(stage.name, help=about.split(";")[0].split(",")[0], description=about)
        _common(p)
        if stage.per_method:
            p.add_argument("--method", default="nokd",
                           help="a distiller (docs/kd-methods.md) on real data, or cgankd+<distiller> on real + "
                                "fakes (cgankd = cgankd+nokd; default nokd)")
        p.set_defaults(func=commands.cmd_stage, stage=stage.name)
    p = sub.add_parser("run", help="every stage in order, in this process, under one MLflow run")
    _common(p)
    p.set_defaults(func=commands.cmd_run)
    p = sub.add_parser("repro", help="`dvc repro` under one MLflow parent run (what `make demo` runs)")
    _common(p)
    p.add_argument("dvc_args", nargs="*", help="extra arguments for dvc repro")
    p.set_defaults(func=commands.cmd_repro)
    p = sub.add_parser("dvc-yaml", help="write dvc.yaml from params.yaml: a stage per student method, the "
                       "code each stage imports and the params it reads")
    _common(p)
    p.add_argument("-o", "--output", default="dvc.yaml")
    p.add_argument("--check", action="store_true", help="exit 2 when the file is stale; write nothing")
    p.set_defaults(func=commands.cmd_dvc_yaml)
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
    p.set_defaults(func=commands.cmd_ablate)
    p = sub.add_parser("compare", help="teacher -> student pairs x KD methods over seeds: a paper-style table; "
                       "an MLflow parent run with a child per (seed, pair, method)")
    _common(p)
    p.add_argument("--pairs", nargs="+", default=["resnet20:convnet_s"], metavar="TEACHER:STUDENT")
    p.add_argument("--methods", nargs="+", default=None,
                   help="distillers, or cgankd+<distiller> (default: every distiller, without and with fakes)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--work", default=None, help="folder for per-seed outputs and results (default: <out_dir>/compare)")
    p.add_argument("--reuse", action="store_true", help="keep upstream stage results already in the work folder")
    p.add_argument("--resume", action="store_true", help="skip runs already in the results file")
    _cluster_args(p)
    p.set_defaults(func=commands.cmd_compare)
    p = sub.add_parser("team-stack", help="PostgreSQL + an MLflow server on it (proxied artifacts) + a Prefect "
                       "server on it, on this machine for a try-out; prints the variables that point at them")
    p.add_argument("--root", default=".team-stack", help="where the databases and artifacts live (kept)")
    p.add_argument("--pg-port", type=int, default=5433)
    p.add_argument("--mlflow-port", type=int, default=5000)
    p.add_argument("--prefect-port", type=int, default=4200)
    p.add_argument("--dav-port", type=int, default=8190, help="the WebDAV server that is the team's DVC remote")
    add_flag(p)
    p.set_defaults(func=commands.cmd_team_stack)
    p = sub.add_parser("dvc-remote", help="point this checkout's DVC at the team's remote (CGANKD_DVC_REMOTE_URL, "
                       "_USER, _PASSWORD: team-stack's client.env) or, without them, at this user's folder outside "
                       "every checkout; written to .dvc/config.local (mode 0600)")
    p.add_argument("--repo", default=".", help="the checkout's root (default: here)")
    p.set_defaults(func=commands.cmd_dvc_remote)
    p = sub.add_parser("serve", help="HTTP server (FastAPI + onnxruntime) for the champion, an alias, "
                       "a version or a .onnx file: POST /predict, GET /healthz /ready /metadata, POST /reload")
    _common(p)
    _model_args(p)
    p.add_argument("--host", default=None, help="bind address (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: serve.port, 8000)")
    p.add_argument("--max-body-mb", type=float, default=None, help="request body limit (default: serve.max_body_mb)")
    p.add_argument("--max-batch", type=int, default=None, help="most inputs per request (default: serve.max_batch)")
    add_flag(p)
    p.set_defaults(func=commands.cmd_serve)
    p = sub.add_parser("tracking-replay", help="log what a run kept in <out_dir>/tracking-backlog.jsonl while "
                       "the tracking server was unreachable")
    _common(p)
    p.set_defaults(func=commands.cmd_tracking_replay)
    p = sub.add_parser("tracking-gc", help="mark RUNNING runs whose process on this host is gone as KILLED")
    _common(p)
    p.set_defaults(func=commands.cmd_tracking_gc)
    p = sub.add_parser("ui", help="the MLflow UI on the tracking store (MLFLOW_TRACKING_URI, default "
                       "sqlite:///mlflow.db), with the address of the runs table in the headline view")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    add_flag(p)
    p.set_defaults(func=commands.cmd_ui)
    p = sub.add_parser("predict", help="batch prediction: a folder of PNG/JPEG images or a .npy/.npz array -> CSV")
    _common(p)
    _model_args(p)
    p.add_argument("--input", "-i", required=True, help="folder of images, or a .npy / .npz file")
    p.add_argument("--out", "-o", required=True, help="CSV to write")
    p.add_argument("--batch-size", type=int, default=256)
    p.set_defaults(func=commands.cmd_predict)
    p = sub.add_parser("promote", help="champion/challenger decision for a registered version "
                       "(champion only if its test metric beats the champion's by more than the margin)")
    _common(p)
    p.add_argument("--name", default=None, help="registered model (default: tracking.model_name)")
    p.add_argument("--version", type=int, default=None, help="version to decide on (default: the newest)")
    p.add_argument("--margin", type=float, default=None, help="default: tracking.promotion_margin")
    p.add_argument("--force", action="store_true", help="make it the champion whatever its metric "
                   "(a rollback, or a re-export of the same student)")
    p.set_defaults(func=commands.cmd_promote)
    data = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("preview", help="write a PNG grid per class / label range")
    _common(p)
    p.add_argument("--split", default="train", choices=["train", "val", "test"])
    p.add_argument("--out", default=None)
    p.add_argument("--per-row", type=int, default=12)
    p.set_defaults(func=commands.cmd_preview)
    p = data.add_parser("folder", help="write the data (e.g. the embedded renderer's) as image files: an "
                        "ImageFolder, or PNGs + train.csv/test.csv for regression (docs/own-data.md)")
    _common(p)
    p.add_argument("out", help="a new folder")
    p.set_defaults(func=commands.cmd_folder)
    p = sub.add_parser("models", help="list the model zoo with parameter counts")
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--outputs", type=int, default=100, help="classes (1 for a regression head)")
    p.set_defaults(func=commands.cmd_models)
    p = sub.add_parser("plan", help="a dry run: each stage's work, images, fakes, device memory and (where a GPU "
                       "speed was measured) time; nothing is trained or written; exit 2 when a stage needs more "
                       "memory than the device has")
    _common(p)
    p.add_argument("--device-memory", type=float, default=None, metavar="GIB",
                   help="the device's memory to check against (default: the GPU's own; none on a CPU machine)")
    p.set_defaults(func=commands.cmd_plan)
    p = sub.add_parser("config", help="print the resolved config (--schema: the JSON Schema of params.yaml)")
    _common(p)
    p.add_argument("--schema", action="store_true", help="print the JSON Schema of params.yaml (params.schema.json "
                   "is this output; editors with a YAML language server read it)")
    p.set_defaults(func=commands.cmd_config)
    return ap
