"""A generator whose state dict is BigGAN-PyTorch's (Brock et al.; the cGAN-KD authors' CIFAR-100 GAN,
``CIFAR-100/BigGAN`` at 8fcb117), so that their released ``G_ema.pth`` loads and samples here.

Written from the architecture their code describes, not copied: non-shared class embeddings
(``G_shared`` off, their CIFAR-100 launch script), no hierarchical z, no attention (``G_attn 0``),
one spectral-norm vector per layer. Names and shapes:

- ``linear``: SN linear ``dim_z -> 16 * in_channels[0]`` (a 4x4 start);
- ``blocks.<i>.0``: residual up-blocks with ``bn1`` / ``bn2`` (class-conditional BN: ``gain`` and
  ``bias`` embeddings ``n_classes x C``, ``stored_mean`` / ``stored_var``), ``conv1`` / ``conv2``
  (3x3) and ``conv_sc`` (1x1);
- ``output_layer``: ``0`` BN (``gain``, ``bias``, stored stats), ``1`` ReLU, ``2`` 3x3 SN conv to RGB;
- every SN layer: ``weight``, ``bias``, ``u0`` (1 x out) and ``sv0`` (1).

Their spectral norm divides by sigma = (v W^T) u^T from one power iteration on ``u0``, updating
``u0`` only in training mode; in eval mode (sampling) ``u0`` stays as loaded. ``sample`` draws in eval
mode, so the stored batch statistics are used. ``load`` also reads their ImageNet-100 BigGAN-deep
(cgankd/gan/biggan_deep.py), told apart by its shared class embedding.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cgankd.base.errors import CgankdError
from cgankd.gan import biggan_deep
from cgankd.gan.biggan_layers import BN, CondBN, SNConv2d, SNLinear

WIDTHS = {32: ([4, 4, 4], [4, 4, 4]), 64: ([16, 16, 8, 4], [16, 8, 4, 2]),
          128: ([16, 16, 8, 4, 2], [16, 8, 4, 2, 1])}  # x ch: in / out channels of each up-block


def ClassBN(channels: int, n_classes: int) -> CondBN:  # noqa: N802 (a layer's name)
    """Class-conditional BN: ``gain`` and ``bias`` embeddings ``n_classes x channels``."""
    return CondBN(channels, nn.Embedding(n_classes, channels), nn.Embedding(n_classes, channels))


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, n_classes: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = SNConv2d(cin, cout), SNConv2d(cout, cout)
        self.conv_sc = SNConv2d(cin, cout, 1, 0)  # every block up-samples: the shortcut is learnt
        self.bn1, self.bn2 = ClassBN(cin, n_classes), ClassBN(cout, n_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.conv_sc(F.interpolate(x, scale_factor=2))


class BigGANPyTorchG(nn.Module):
    def __init__(self, num_classes: int, resolution: int = 32, ch: int = 64, z_dim: int = 128) -> None:
        super().__init__()
        if resolution not in WIDTHS:
            raise ValueError(f"BigGAN-PyTorch generators here: {sorted(WIDTHS)} px, not {resolution}")
        ins, outs = ([ch * k for k in w] for w in WIDTHS[resolution])
        self.num_classes, self.z_dim, self.resolution, self.ch = num_classes, z_dim, resolution, ch
        self.linear = SNLinear(z_dim, ins[0] * 16)
        self.blocks = nn.ModuleList(nn.ModuleList([UpBlock(i, o, num_classes)]) for i, o in zip(ins, outs, strict=True))
        self.output_layer = nn.Sequential(BN(outs[-1]), nn.ReLU(), SNConv2d(outs[-1], 3))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).reshape(len(z), -1, 4, 4)
        for (block,) in self.blocks:
            h = block(h, y.long())
        return torch.tanh(self.output_layer(h))


def architecture(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """num_classes, resolution, ch and z_dim read from a state dict's shapes (one-line errors for a
    file of another layout are the caller's: ``KeyError`` names the missing key)."""
    n_blocks = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    resolution = 4 * 2**n_blocks
    if resolution not in WIDTHS:
        raise ValueError(f"{n_blocks} up-blocks ({resolution} px); this loader knows {sorted(WIDTHS)} px")
    ch = state["output_layer.0.gain"].shape[0] // WIDTHS[resolution][1][-1]
    return {"num_classes": int(state["blocks.0.0.bn1.gain.weight"].shape[0]), "resolution": resolution, "ch": int(ch),
            "z_dim": int(state["linear.weight"].shape[1])}


def build(arch: dict[str, int]) -> nn.Module:
    """The generator an ``architecture`` describes (BigGAN-deep's has ``shared_dim``)."""
    if "shared_dim" in arch:
        return biggan_deep.BigGANDeepG(arch["num_classes"], arch["resolution"], arch["ch"], arch["z_dim"],
                                       arch["shared_dim"], arch["attention"])
    return BigGANPyTorchG(arch["num_classes"], arch["resolution"], arch["ch"], arch["z_dim"])


def read_architecture(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """BigGAN-deep's (a shared class embedding: the authors' ImageNet-100 G) or BigGAN's (CIFAR-100)."""
    if "shared.weight" in state:
        return biggan_deep.architecture(state)
    return architecture(state)


def load(path: str | Path, num_classes: int, resolution: int, channels: int, z_dim: int) -> nn.Module:
    """The generator in ``path`` (a BigGAN-PyTorch ``G_ema.pth``, BigGAN or BigGAN-deep: a state dict, read
    weights only), checked against the data it will make fakes for; one-line errors name the file and the
    mismatch."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CgankdError(str(p), "no such file (gan.init: a BigGAN-PyTorch G_ema.pth)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle of code, a truncated file: refused, nothing in it runs
        raise CgankdError(str(p), f"not a state dict that loads weights-only ({type(exc).__name__})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CgankdError(str(p), "not a state dict of tensors")
    try:
        arch = read_architecture(state)
    except (KeyError, ValueError) as exc:
        raise CgankdError(str(p), f"not a BigGAN-PyTorch generator ({exc}; keys: "
                                  f"{', '.join(list(state)[:6])}...)") from None
    wanted = {"num_classes": num_classes, "resolution": resolution, "z_dim": z_dim}
    off = [f"{k} {arch[k]} (the data / config: {v})" for k, v in wanted.items() if arch[k] != v]
    if channels != 3:
        off.append(f"3 output channels (the data: {channels})")
    if off:
        raise CgankdError(str(p), "does not fit: it has " + ", ".join(off) +
                          (" - set -S gan.z_dim to the generator's" if arch["z_dim"] != z_dim else ""))
    g = build(arch)
    kind = "BigGAN-deep's generator (G_shared, hier)" if "shared_dim" in arch else \
        "BigGAN-PyTorch's generator (G_shared off, no attention)"
    try:
        result = g.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise CgankdError(str(p), f"shapes differ from {kind}: {str(exc).splitlines()[-1].strip()}") from None
    if result.missing_keys or result.unexpected_keys:
        raise CgankdError(str(p), f"keys differ from {kind}: missing {result.missing_keys[:4]}, "
                                  f"unexpected {result.unexpected_keys[:4]}")
    return g.eval()
