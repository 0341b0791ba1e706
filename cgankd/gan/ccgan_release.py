"""The authors' released CcGAN for a regression data set (``gan.init`` with ``gan.ccgan.y2h_init``):
their ``ckpt_SAGAN_...pth`` (``netG_state_dict``, saved through ``nn.DataParallel``) and the label
embedding it was trained with (``ckpt_embed_y2h_epoch_500_seed_2020.pth``, ``net_state_dict``), read
weights-only into cgankd's SAGAN generator (cgankd/gan/sagan.py) and y2h net
(cgankd/gan/label_embed.py), checked against the data the fakes are made for.

Their generator reads labels normalised their way: UTKFace's age / 60, Steering Angle's
(angle - min) / (max - min). ``label_range`` (``gan.ccgan.init_label_range``; default the data's own)
is the range their [0, 1] spans, and the generator's ``label_map`` turns cgankd's scaled label into
theirs.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from cgankd.base.errors import CgankdError
from cgankd.gan.label_embed import Y2H
from cgankd.gan.sagan import Generator
from cgankd.models.released import read


def architecture(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """resolution, ch, z_dim and embed_dim of a SAGAN generator's state dict (KeyError: not one)."""
    n = len({k.split(".")[0] for k in state if k.startswith("block") and ".cond_bn1." in k})
    return {"resolution": 4 * 2**n, "ch": int(state["snconv2d1.weight_orig"].shape[1]),
            "z_dim": int(state["snlinear0.weight_orig"].shape[1]),
            "embed_dim": int(state["block1.cond_bn1.embed_gamma.weight"].shape[1]),
            "channels": int(state["snconv2d1.weight_orig"].shape[0])}


def label_map(theirs: tuple[float, float], ours: tuple[float, float]) -> tuple[float, float]:
    """(a, b) with a * ours_scaled + b = theirs_scaled for the same label."""
    (t_lo, t_hi), (o_lo, o_hi) = theirs, ours
    a = (o_hi - o_lo) / (t_hi - t_lo)
    return a, (o_lo - t_lo) / (t_hi - t_lo)


def load(g_path: str | Path, y2h_path: str | Path | None, resolution: int, channels: int, z_dim: int,
         data_range: tuple[float, float], label_range: tuple[float, float] | None) -> Generator:
    """Their generator with their y2h, in eval mode; one-line errors name the file and what is off."""
    if not y2h_path:
        raise CgankdError("param gan.ccgan.y2h_init", "a released CcGAN needs the label embedding it was trained "
                                                     "with: their ckpt_embed_y2h_epoch_500_seed_2020.pth")
    state = read(g_path, "gan.init: the authors' CcGAN checkpoint", ("netG_state_dict",))
    try:
        arch = architecture(state)
    except KeyError as exc:
        raise CgankdError(str(g_path), f"not the authors' SAGAN generator (no {exc}; keys: "
                                       f"{', '.join(list(state)[:6])}...)") from None
    off = [f"{k} {arch[k]} (the data / config: {v})" for k, v in
           {"resolution": resolution, "channels": channels, "z_dim": z_dim}.items() if arch[k] != v]
    if off:
        raise CgankdError(str(g_path), "does not fit: it has " + ", ".join(off))
    y2h_state = read(y2h_path, "gan.ccgan.y2h_init: the authors' y2h checkpoint", ("net_state_dict",))
    y2h = Y2H(arch["embed_dim"])
    try:
        y2h.load_state_dict(y2h_state)
    except RuntimeError as exc:
        raise CgankdError(str(y2h_path), f"not a y2h net of {arch['embed_dim']} wide, the generator's embedding: "
                                         f"{str(exc).splitlines()[-1].strip()}") from None
    g = Generator(None, arch["resolution"], arch["channels"], arch["z_dim"], arch["ch"], arch["embed_dim"], y2h)
    try:
        result = g.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise CgankdError(str(g_path), f"shapes differ from the SAGAN generator: "
                                       f"{str(exc).splitlines()[-1].strip()}") from None
    missing = [k for k in result.missing_keys if not k.startswith("embed.") and k != "label_map"]
    if missing or result.unexpected_keys:
        raise CgankdError(str(g_path), f"keys differ from the authors' SAGAN generator: missing {missing[:4]}, "
                                       f"unexpected {result.unexpected_keys[:4]}")
    theirs = tuple(label_range) if label_range else tuple(data_range)
    if not all(map(math.isfinite, theirs)) or theirs[1] <= theirs[0]:
        raise CgankdError("param gan.ccgan.init_label_range",
                          f"must be [low, high] with low < high, got {list(theirs)}")
    g.label_map.copy_(torch.tensor(label_map(theirs, tuple(data_range))))
    return g.eval()
