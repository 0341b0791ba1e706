"""One home for model files and the output layout.

Every model file is ``{"format": FORMAT, "kind": ..., "meta": plain data, "state": tensors}``,
written atomically and read with ``torch.load(weights_only=True)``: no pickled code is ever run. A
file holding pickled objects is refused with one line; a file of an older cgankd (no ``format``)
gets a one-line "re-run the stage". The kinds (``KINDS``) know how to rebuild their module from
``meta`` + ``state`` and place it on a device.

``Layout`` is the one map of where each stage writes; the stages, ``ablate``, ``compare`` and the
bench scripts use it (``done`` tells whether a stage has already run in a folder).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cgankd.base.errors import CgankdError
from cgankd.base.io import atomic_path, read_json
from cgankd.base.registry import Registry
from cgankd.config import Config

FORMAT = "cgankd/2"
Builder = Callable[[dict[str, Any], dict[str, torch.Tensor]], nn.Module]
KINDS: Registry[Builder] = Registry("model file kind")


def plain(obj: Any) -> Any:
    """Metadata as the weights-only unpickler accepts it: numpy scalars and arrays become Python
    numbers and lists, tuples lists."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save(path: str | Path, kind: str, meta: dict[str, Any], state: dict[str, Any]) -> None:
    """Write a model file atomically (tensors on the CPU, so a CPU machine can read a GPU run's)."""
    KINDS.get(kind)
    state = _to_cpu(state)
    buf = io.BytesIO()  # serialised in memory: a full disk is then an OSError of the write below
    torch.save({"format": FORMAT, "kind": kind, "meta": plain(meta), "state": state}, buf)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getbuffer())


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def read(path: str | Path, kind: str, stage: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, state) of a model file of this kind; every failure is one line naming the file."""
    path = Path(path)
    rerun = f"re-run `cgankd {stage}`" if stage else "re-run the stage that makes it"
    if not path.is_file():
        raise CgankdError(str(path), f"not found ({rerun} first)")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise CgankdError(str(path), f"not a readable model file (not written by torch.save); {rerun}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CgankdError(str(path), "holds pickled Python objects, refused (files are loaded with "
                          f"weights_only=True); {rerun} to write it again") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CgankdError(str(path), f"not a readable model file ({str(exc).splitlines()[0][:120]}); "
                          f"{rerun}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CgankdError(str(path), f"written by an older cgankd (or not by cgankd); {rerun}")
    if obj.get("kind") != kind:
        raise CgankdError(str(path), f"holds a {obj.get('kind')}, expected a {kind}")
    return obj["meta"], obj["state"]


def load(path: str | Path, kind: str, device: torch.device | str = "cpu", stage: str | None = None) -> nn.Module:
    """The module saved in ``path``, rebuilt, on ``device``, in eval mode."""
    meta, state = read(path, kind, stage)
    return KINDS.get(kind)(meta, state).to(device).eval()


# -- the kinds ------------------------------------------------------------------------------


@KINDS.register("image_model")
def _image_model(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.models import rebuild_model

    return rebuild_model(meta["model"], state)


@KINDS.register("gan_generator")
def _gan_generator(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.gan.biggan import Generator

    gan = meta["gan"]
    g = Generator(meta["num_classes"], meta["resolution"], meta["channels"], gan["z_dim"], gan["g_ch"],
                  gan["embed_dim"])
    g.load_state_dict(state)
    return g


@KINDS.register("vkd_generator")
def _vkd_generator(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.kd.vkd_generator import VirtualKnowledgeGenerator

    v = VirtualKnowledgeGenerator(meta["num_classes"], meta["z_dim"])
    v.load_state_dict(state)
    return v


@KINDS.register("extractor")
def _extractor(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.features.sparse_ae import SparseAE
    from cgankd.models import rebuild_model

    if meta["kind"] != "sparse_ae":  # a classifier, saved with its ImageModel meta
        return rebuild_model({k: v for k, v in meta.items() if k != "kind"}, state)
    model = SparseAE(meta["channels"], meta["resolution"], meta["feat_dim"])
    model.load_state_dict(state)
    return model


@KINDS.register("dre")
def _dre(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    from cgankd.subsample.dre import RatioMLP

    dre = RatioMLP(meta["feat_dim"], meta["num_classes"], meta["hidden"])
    dre.load_state_dict(state)
    return dre


@KINDS.register("gan_checkpoint")
def _no_module(meta: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    raise CgankdError("gan checkpoint", "is training state, read it with store.read")


# -- what each kind saves -----------------------------------------------------------------


def save_model(model: nn.Module, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """A teacher or student (an ``ImageModel``) with its meta and e.g. ``best_step``."""
    save(path, "image_model", {"model": model.meta, **(extra or {})}, model.state_dict())


def load_model(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    return load(path, "image_model", device)


def save_gan_generator(g: nn.Module, path: str | Path, meta: dict[str, Any]) -> None:
    save(path, "gan_generator", meta, g.state_dict())


def save_extractor(model: nn.Module, spec: dict[str, Any], path: str | Path) -> None:
    save(path, "extractor", spec, model.state_dict())


def save_vkd_generator(v: nn.Module, path: str | Path, extra: dict[str, Any]) -> None:
    save(path, "vkd_generator", {"num_classes": v.num_classes, "z_dim": v.z_dim, **extra}, v.state_dict())


def save_dre(dre: nn.Module, path: str | Path) -> None:
    spec = {"feat_dim": dre.mean.numel(), "num_classes": dre.label.num_classes, "hidden": dre.net[0].out_features}
    save(path, "dre", spec, dre.state_dict())


# -- the output layout --------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where each stage of one pipeline folder (``cfg.out_dir``) writes."""

    cfg: Config

    @property
    def prepared(self) -> Path:
        return self.cfg.path("prepared")

    @property
    def teacher(self) -> Path:
        return self.cfg.path("teacher", "model.pt")

    @property
    def extractor(self) -> Path:
        return self.cfg.path("extractor", "model.pt")

    @property
    def gan(self) -> Path:
        return self.cfg.path("gan", "generator.pt")

    @property
    def gan_last(self) -> Path:
        """The last EMA generator; ``gan`` is the best-scoring one (the same without checks)."""
        return self.cfg.path("gan", "generator_last.pt")

    @property
    def gan_checkpoint(self) -> Path:
        return self.cfg.path(".checkpoints", "gan.pt")

    @property
    def fakes(self) -> Path:
        return self.cfg.path("fakes", "fakes.npz")

    @property
    def dre(self) -> Path:
        return self.cfg.path("fakes", "dre.pt")

    @property
    def vkd(self) -> Path:
        return self.cfg.path("vkd", "generator.pt")

    def student(self, method: str) -> Path:
        return self.cfg.student_dir(method) / "model.pt"

    def metrics(self, stage: str, method: str | None = None) -> Path:
        """The metrics file a stage writes (its recorded result)."""
        if stage == "train-student":
            return self.cfg.student_metrics(str(method))
        key = {"train-teacher": "teacher", "train-extractor": "extractor", "make-fakes": "fakes",
               "train-vkd": "vkd"}[stage]
        return self.cfg.path("metrics", f"{key}.json")

    def done(self, stage: str, method: str | None = None) -> dict[str, Any] | None:
        """A stage's recorded result in this folder, or None when it has not run here."""
        marker = {"prepare": self.prepared / "meta.json", "train-gan": self.gan}.get(stage)
        if marker is not None:
            return {"reused": True} if marker.is_file() else None
        path = self.metrics(stage, method)
        return read_json(path) if path.is_file() else None
