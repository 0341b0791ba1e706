"""The model registry side of MLflow: registering an exported student (ONNX and its PyTorch twin,
under the registry's lock, aliases moved only once a version is complete), promotion by the
champion/challenger rule (``cgankd.ops.promotion``), and fetching a registered model to serve it.
Runs and their lifecycle are ``cgankd.ops.tracking``."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from cgankd.base.errors import CgankdError
from cgankd.base.redact import redact
from cgankd.base.tracker import NullTracker
from cgankd.config import Config
from cgankd.ops.backlog import GuardedTracker, errors, offline
from cgankd.ops.conflicts import ATTEMPTS, conflict, pause
from cgankd.ops.registry_lock import COMPLETE_TAG, clean_half_made, complete, registry_lock
from cgankd.ops.tracking import git_commit, mlflow_or_none, require_mlflow, tracking_uri


def register_student(cfg: Config, onnx_path: Path, torch_model: Any, sample: Any, metric: float,
                     info: dict[str, Any], tracker: NullTracker) -> dict[str, Any]:
    """Log the student as ONNX and PyTorch models, register both, and move the aliases
    (``promote``: champion only when the test metric improves by more than the margin).
    ``info["pyfunc"]``: the pyfunc model the ONNX file is served through by MLflow (the serve wing's
    ``cgankd.serve.pyfunc.StudentModel``: classes and probabilities, or values, like ``cgankd serve``)."""
    if mlflow_or_none() is None or not isinstance(tracker, GuardedTracker):
        return {"registered": False, "reason": "tracking is off"}
    try:
        if tracker.run_id is None or offline(tracker.uri):
            raise ConnectionError("unreachable earlier in this run")
        return _register(cfg, onnx_path, torch_model, sample, metric, info)
    except errors() as exc:
        raise CgankdError(f"register ({redact(tracking_uri())})", f"the tracking server failed ({type(exc).__name__}): "
                          "the student is not registered and no alias moved (aliases move only after a "
                          "version's files are stored); its ONNX file is in export/; re-run `cgankd register` "
                          "when the server is back") from None


def _register(cfg: Config, onnx_path: Path, torch_model: Any, sample: Any, metric: float,
              info: dict[str, Any]) -> dict[str, Any]:
    """Under the registry's lock (cgankd/ops/registry_lock.py): clean up, then register."""
    from mlflow.tracking import MlflowClient

    name = cfg.model_name
    client = MlflowClient()
    with registry_lock(tracking_uri()) as held:
        gone = clean_half_made(client, name, held)
        if gone:
            print(f"register: deleted what an interrupted register left: {', '.join(gone)}", file=sys.stderr)
        same_metric(_champion(client, name), name, info["metric_name"], "this student")  # before logging anything
        return _register_locked(cfg, client, onnx_path, torch_model, sample, metric, info)


def _register_locked(cfg: Config, client: Any, onnx_path: Path, torch_model: Any, sample: Any, metric: float,
                     info: dict[str, Any]) -> dict[str, Any]:
    """The versions, their pairing tags, then ``test_metric`` (complete), then the aliases."""
    import mlflow.onnx
    import mlflow.pyfunc
    import mlflow.pytorch
    from mlflow.models import infer_signature

    from cgankd.base import faults

    name = cfg.model_name
    out = torch_model(sample).detach().numpy()
    signature = infer_signature(sample.numpy(), out)
    tags = {"metric_name": info["metric_name"], "task": cfg.task, "method": info["method"],
            "git_commit": git_commit()}
    pyfunc = info["pyfunc"]
    # the ONNX file as the pyfunc's one artifact: answers like cgankd serve at any batch size
    onnx_info = mlflow.pyfunc.log_model(name="student_onnx", python_model=pyfunc, artifacts=pyfunc.artifacts(onnx_path),
                                        signature=infer_signature(sample.numpy()), registered_model_name=name,
                                        input_example=sample.numpy()[:1],
                                        pip_requirements=[*requirements(mlflow.onnx), pinned("cloudpickle")])
    version = str(onnx_info.registered_model_version)
    tags["onnx_sha256"] = stored_digest(onnx_info.model_uri)  # checked before serving (fetch_registered)
    faults.point("register-onnx")  # the ONNX version exists, nothing else
    torch_info = mlflow.pytorch.log_model(torch_model, name="student_pytorch", signature=signature,
                                          registered_model_name=f"{name}-pytorch", input_example=sample,
                                          pip_requirements=requirements(mlflow.pytorch))
    twin = str(torch_info.registered_model_version)
    faults.point("register-pytorch")  # both versions exist, unpaired, untagged
    if info.get("int8"):  # the int8 twin that passed evaluate's check: beside the version, in its run
        mlflow.log_artifact(str(info["int8"]), "student_int8")
        tags["int8_sha256"] = sha256(Path(info["int8"]))
    if info.get("int8_why"):
        tags["int8"] = info["int8_why"]
    client.set_model_version_tag(f"{name}-pytorch", twin, "onnx_version", version)
    for k, v in {**tags, "pytorch_version": twin}.items():
        client.set_model_version_tag(name, version, k, v)
    if info.get("card"):  # the model card (cgankd/ops/version_card.py): the registry's description of both versions
        client.update_model_version(name, version, description=info["card"])
        client.update_model_version(f"{name}-pytorch", twin, description=f"{info['card']}\nThe PyTorch weights of "
                                    f"`{name}` version {version} (the ONNX model).")
    faults.point("register-tags")  # paired and tagged, not complete
    client.set_model_version_tag(name, version, COMPLETE_TAG, f"{metric:.6g}")  # last: now complete
    result = promote(name, int(version), cfg.tracking.promotion_margin)
    return {"registered": True, **result, "uri": f"models:/{name}/{version}"}


def requirements(flavor: Any) -> list[str]:
    """What a logged model needs, pinned to this environment: the flavor's own packages and numpy
    (its input). Given, MLflow does not infer them, which loads the model in a child process that
    imports the flavor (~12 s per register, most of its time) and lists whatever else that imported."""
    return [*flavor.get_default_pip_requirements(), pinned("numpy")]


def pinned(package: str) -> str:
    from importlib.metadata import version

    return f"{package}=={version(package)}"


def _champion(client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException:  # no champion (or no model) yet
        return None


def same_metric(champ: Any, name: str, metric_name: str, who: str) -> None:
    """A version scored by another metric than the champion (a regressor against a classifier)
    is never compared with it."""
    if champ is not None and champ.tags.get("metric_name") != metric_name:
        raise CgankdError(f"registered model {name}", f"its champion v{champ.version} is scored by "
                          f"{champ.tags.get('metric_name')}, {who} by {metric_name}; "
                          "set tracking.model_name to keep them apart")


def promote(name: str, version: int | None, margin: float, force: bool = False) -> dict[str, Any]:
    """Move ``champion`` to ``version`` (default: the newest) if its test metric beats the
    champion's by more than ``margin`` (or ``force``: a rollback, a re-export); else alias it
    ``challenger``. The reason is tagged. Only complete versions (cgankd/ops/registry_lock.py)."""
    require_mlflow(f"registered model {name}")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    with registry_lock(tracking_uri()) as held:  # the champion is read and the alias moved by one process at a time
        try:
            if version is None:  # the newest complete version
                version = max(int(v.version) for v in client.search_model_versions(f"name = '{name}'") if complete(v))
            mv = client.get_model_version(name, str(version))
        except (MlflowException, ValueError) as exc:
            raise CgankdError(f"registered model {name}", f"no version {version or '(none registered)'}") from exc
        if not complete(mv):
            raise CgankdError(f"{name} v{version}", "is incomplete (its registration was interrupted, or it was "
                              "not registered by cgankd register): never promoted or served; the next "
                              "`cgankd register` deletes it")
        return _promote_locked(client, name, mv, margin, force) if held else _promote_unlocked(
            client, name, mv, margin, force)


def _promote_unlocked(client: Any, name: str, mv: Any, margin: float, force: bool) -> dict[str, Any]:
    """On a tracking server there is no lock (cgankd/ops/registry_lock.py), and two registers that
    end together move the same alias at once. A move the store refuses as a concurrent insert
    (cgankd/ops/conflicts.py) is decided again against the champion read anew; a champion moved
    here is read back, and when another version took it meanwhile, decided again against that
    one. (Two moves within the same few milliseconds can still leave the later writer champion.)"""
    for attempt in range(ATTEMPTS):
        try:
            result = _promote_locked(client, name, mv, margin, force)
        except Exception as exc:
            if attempt == ATTEMPTS - 1 or not conflict(exc):
                raise
        else:
            champ = _champion(client, name)
            if force or result["alias"] != "champion" or champ is None or int(champ.version) == result["version"]:
                return result
        pause(attempt)
        mv = client.get_model_version(name, str(mv.version))  # its aliases as they are now
    return result


def _promote_locked(client: Any, name: str, mv: Any, margin: float, force: bool) -> dict[str, Any]:
    from cgankd.base import faults
    from cgankd.ops.promotion import Decision, decide

    version = int(mv.version)
    metric, metric_name = float(mv.tags[COMPLETE_TAG]), mv.tags["metric_name"]
    champ = _champion(client, name)
    already = champ is not None and int(champ.version) == int(version)
    if already:
        decision_reason, alias = "is the champion already", "champion"
    else:
        same_metric(champ, name, metric_name, f"v{version}")
        champ_metric = float(champ.tags.get("test_metric", "nan")) if champ is not None else None
        d = decide(metric_name, metric, champ_metric, champ.version if champ else None,
                   metric_name.endswith("acc"), margin)
        if force:
            d = Decision(True, f"forced by the operator ({d.reason})")
        alias = "champion" if d.promote else "challenger"
        decision_reason = d.reason
        faults.point("promote")  # decided, no alias moved
        _move_alias(client, name, str(version), mv.aliases, alias, d.promote)
        faults.point("promote-twin")  # the ONNX version moved, its PyTorch twin not yet
    twin = mv.tags.get("pytorch_version")  # None: registered before the twins were paired by tag
    if twin is not None:  # models:/<name>-pytorch@champion loads the weights of models:/<name>@champion
        twin_aliases = client.get_model_version(f"{name}-pytorch", twin).aliases
        if alias not in twin_aliases:  # also a pair split by a promotion killed between the two moves
            _move_alias(client, f"{name}-pytorch", twin, twin_aliases, alias, alias == "champion")
    if not already:
        client.set_model_version_tag(name, str(version), "promotion", decision_reason)
    return {"model_name": name, "version": int(version), "alias": alias, "reason": decision_reason,
            "margin": margin}


def _move_alias(client: Any, model: str, version: str, aliases: list[str], alias: str, promoted: bool) -> None:
    """``alias`` to ``model`` ``version`` (which holds ``aliases`` now); a challenger that won is the champion
    now, no longer the challenger."""
    client.set_registered_model_alias(model, alias, version)
    if promoted and "challenger" in aliases:
        client.delete_registered_model_alias(model, "challenger")


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>`` -> (name, alias, version)."""
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias:
            return name, alias, None
    elif "/" in rest:
        name, version = rest.rsplit("/", 1)
        if name and version.isdigit():
            return name, None, version
    raise CgankdError(uri, "expected models:/<name>@<alias> or models:/<name>/<version>")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_digest(model_uri: str) -> str:
    """The sha256 of the .onnx file as the artifact store holds it (MLflow re-serialises the model)."""
    import tempfile

    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="cgankd-digest-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        return sha256(sorted(local.rglob("*.onnx"))[0])


def fetch_registered(uri: str, dst: Path, precision: str = "fp32") -> tuple[Path, dict[str, Any]]:
    """Download a registered ONNX model version into ``dst``, or with ``precision="int8"`` its int8
    twin (registered beside it when evaluate passed it); returns its .onnx path and (name, version,
    alias, uri, run id, tags). The file must have the sha256 tagged at register. An unknown model,
    alias or version is a one-line error; so is a sqlite registry that does not exist yet (said at
    once, and no empty database is left)."""
    db = tracking_uri().removeprefix("sqlite:///") if tracking_uri().startswith("sqlite:///") else None
    if db is not None and not Path(db).is_file():
        raise CgankdError(uri, f"no model registry yet ({db} does not exist): run `make demo` or `cgankd run` "
                          "to register a student first, set MLFLOW_TRACKING_URI to your registry, or serve an "
                          "exported .onnx file")
    require_mlflow(uri)
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    name, alias, version = parse_model_uri(uri)
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        try:
            known = sorted(client.get_registered_model(name).aliases)
        except MlflowException:
            raise CgankdError(uri, f"no registered model {name!r} in {redact(tracking_uri())}") from exc
        what = f"alias {alias!r}" if alias else f"version {version}"
        raise CgankdError(uri, f"model {name!r} has no {what} (aliases: {', '.join(known) or 'none'})") from exc
    if not complete(mv):
        raise CgankdError(uri, f"version {mv.version} is incomplete (its registration was interrupted, or it was "
                          "not registered by cgankd register): not served")
    tag = "int8_sha256" if precision == "int8" else "onnx_sha256"
    if tag not in mv.tags and precision == "int8":
        why = mv.tags.get("int8", "registered without export.int8")
        raise CgankdError(uri, f"version {mv.version} has no int8 twin ({why}): serve it with serve.precision=fp32")
    source = f"runs:/{mv.run_id}/student_int8" if precision == "int8" else f"models:/{name}/{mv.version}"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst)))
    found = sorted(local.rglob("*.onnx")) if local.is_dir() else [local]
    if not found:
        raise CgankdError(uri, f"version {mv.version} holds no .onnx file (is it the PyTorch flavour?)")
    digest = sha256(found[0])
    if mv.tags.get(tag) != digest:  # changed in the artifact store since register, or never recorded
        raise CgankdError(uri, f"version {mv.version}'s {precision} ONNX file is not the one registered (sha256 "
                          f"{digest[:12]}, tag {str(mv.tags.get(tag))[:12]}): not served; register the student again")
    info = {"name": name, "version": int(mv.version), "alias": alias, "uri": uri, "run_id": mv.run_id,
            "tags": dict(mv.tags)}
    return found[0], info
