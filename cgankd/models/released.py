"""A released classifier checkpoint loaded into a zoo network (``teacher.init``, ``filter.net_init``): the
cGAN-KD authors' teachers and filter networks (RepDistiller's ``{'model': state_dict}``, their own scripts'
``{'net_state_dict': ...}``, through ``nn.DataParallel`` or not), read weights-only.

Their modules carry other names than cgankd's (RepDistiller's ``block1.layer.0.convShortcut`` is
cgankd's ``groups.0.0.short``), but a network of the same architecture registers the same tensors in the
same order. So the tensors are matched by position, and every pair must agree in shape: the first that
does not is named with both keys, in one line. Nothing loads unless all of them match.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cgankd.base.errors import CgankdError

KEYS = ("model", "net_state_dict", "state_dict")  # RepDistiller, the authors' scripts, the common one
PREFIX = "module."  # nn.DataParallel's


def read(path: str | Path, what: str, keys: tuple[str, ...] = KEYS) -> dict[str, torch.Tensor]:
    """The state dict under the first of ``keys`` the file has (or the file itself), ``module.`` stripped."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CgankdError(str(p), f"no such file ({what})")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle of code, a truncated file: refused, nothing in it runs
        raise CgankdError(str(p), f"not a checkpoint that loads weights-only ({type(exc).__name__})") from None
    state = obj
    if isinstance(obj, dict):
        state = next((obj[k] for k in keys if isinstance(obj.get(k), dict)), obj)
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = ", ".join(map(str, list(obj)[:6])) if isinstance(obj, dict) else type(obj).__name__
        raise CgankdError(str(p), f"holds no state dict of tensors under {' / '.join(keys)} (found: {found})")
    return {k.removeprefix(PREFIX): v for k, v in state.items()}


def load_released(path: str | Path, model: nn.Module, arch: str, what: str) -> dict[str, str]:
    """Copies the checkpoint's tensors into ``model`` in order; returns {our key: their key}."""
    theirs = read(path, what)
    ours = model.state_dict()
    mapping = {}
    for i, ((ok, ov), (tk, tv)) in enumerate(zip(ours.items(), theirs.items(), strict=False)):  # counts: below
        if ov.shape != tv.shape:
            raise CgankdError(str(path), f"tensor {i} is {tk} {tuple(tv.shape)}, cgankd's {arch} has {ok} "
                                         f"{tuple(ov.shape)} there: another architecture (or width / classes)")
        mapping[ok] = tk
    if len(theirs) != len(ours):
        raise CgankdError(str(path), f"has {len(theirs)} tensors, cgankd's {arch} {len(ours)}: another architecture "
                                     f"(or width / classes) than {what} names")
    model.load_state_dict({ok: theirs[tk] for ok, tk in mapping.items()})
    return mapping
