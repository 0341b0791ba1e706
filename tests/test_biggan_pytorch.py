"""The authors' released BigGAN-PyTorch generator loads: a state dict with their key names and shapes
(derived from CIFAR-100/BigGAN/BigGAN.py and layers.py at 8fcb117: G_ch 64, dim_z 128, 100 classes,
32 px, G_shared off, no attention) loads, ``gan.init`` makes train-gan write it instead of training,
and make-fakes samples from it; a file of another shape or kind is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shrunk
from kit import loaded_gan, make_cifar

from cgankd.base.errors import CgankdError
from cgankd.gan.biggan_pytorch import BigGANPyTorchG
from cgankd.stages import make_fakes
from cgankd.store import files

SN = {"weight": None, "bias": None, "u0": None, "sv0": (1,)}


def _sn(name: str, weight: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": weight, f"{name}.bias": (weight[0],), f"{name}.u0": (1, weight[0]), f"{name}.sv0": (1,)}


def _ccbn(name: str, c: int, n: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.gain.weight": (n, c), f"{name}.bias.weight": (n, c), f"{name}.stored_mean": (c,),
            f"{name}.stored_var": (c,)}


# G.state_dict() of Generator(G_ch=64, dim_z=128, resolution=32, n_classes=100, G_attn='0', G_shared=False):
# arch[32] in/out channels 4*ch = 256 in each of 3 up-blocks, linear to 4*4*256, a BN-ReLU-conv output layer
CIFAR100 = {**_sn("linear", (4096, 128)),
            **{k: v for i in range(3) for k, v in {
                **_sn(f"blocks.{i}.0.conv1", (256, 256, 3, 3)), **_sn(f"blocks.{i}.0.conv2", (256, 256, 3, 3)),
                **_sn(f"blocks.{i}.0.conv_sc", (256, 256, 1, 1)), **_ccbn(f"blocks.{i}.0.bn1", 256, 100),
                **_ccbn(f"blocks.{i}.0.bn2", 256, 100)}.items()},
            "output_layer.0.gain": (256,), "output_layer.0.bias": (256,), "output_layer.0.stored_mean": (256,),
            "output_layer.0.stored_var": (256,), **_sn("output_layer.2", (3, 256, 3, 3))}


def test_the_state_dict_is_biggan_pytorchs():
    state = BigGANPyTorchG(100, 32, 64, 128).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == CIFAR100


def _their_file(path, n_classes: int, ch: int, z_dim: int) -> None:
    """A G_ema.pth as BigGAN-PyTorch writes it: torch.save of the state dict (random weights)."""
    torch.manual_seed(0)
    state = BigGANPyTorchG(n_classes, 32, ch, z_dim).state_dict()
    torch.save({k: v.abs() + 0.5 if k.endswith("stored_var") else v for k, v in state.items()}, path)


def test_gan_init_loads_the_authors_generator_and_make_fakes_samples_from_it(tmp_path):
    root = make_cifar(tmp_path / "data", hundred=True)  # 10 classes at 32 px
    g_file = tmp_path / "G_ema.pth"
    _their_file(g_file, 10, 4, 8)
    cfg = shrunk(tmp_path / "out", "data.source=cifar100", f"data.root={root}", "data.n_per_class=3",
                 "data.n_val_per_class=1", "data.resolution=32", f"gan.init={g_file}", "gan.z_dim=8",
                 "subsample.enabled=false")
    loaded_gan(cfg)
    meta, state = files.read(tmp_path / "out" / "gan" / "generator.pt", "gan_generator")
    assert meta["arch"] == "biggan-pytorch" and meta["biggan_pytorch"] == {
        "num_classes": 10, "resolution": 32, "ch": 4, "z_dim": 8}
    assert torch.equal(state["linear.u0"], torch.load(g_file, weights_only=True)["linear.u0"])
    make_fakes.run(cfg)
    fakes = np.load(tmp_path / "out" / "fakes" / "fakes.npz")
    assert fakes["fake_images"].shape[1:] == (3, 32, 32) and len(fakes["fake_images"]) > 0


def test_a_generator_that_does_not_fit_is_refused_in_one_line(tmp_path):
    from cgankd.gan.biggan_pytorch import load

    path = tmp_path / "G_ema.pth"
    _their_file(path, 7, 4, 8)
    with pytest.raises(CgankdError, match=r"does not fit: it has num_classes 7 \(the data / config: 10\)"):
        load(path, 10, 32, 3, 8)
    with pytest.raises(CgankdError, match="z_dim 8 .* set -S gan.z_dim to the generator's"):
        load(path, 7, 32, 3, 64)
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CgankdError, match="not a BigGAN-PyTorch generator"):
        load(tmp_path / "other.pth", 10, 32, 3, 8)
    torch.save({"g": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pth")  # a module: code, not weights
    with pytest.raises(CgankdError, match="not a state dict that loads weights-only"):
        load(tmp_path / "pickled.pth", 10, 32, 3, 8)


def _sn_nobias(name: str, weight: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": weight, f"{name}.u0": (1, weight[0]), f"{name}.sv0": (1,)}


def _deep_ccbn(name: str, c: int, cond: int) -> dict[str, tuple[int, ...]]:
    return {**_sn_nobias(f"{name}.gain", (c, cond)), **_sn_nobias(f"{name}.bias", (c, cond)),
            f"{name}.stored_mean": (c,), f"{name}.stored_var": (c,)}


def _deep_block(name: str, cin: int, cout: int, cond: int) -> dict[str, tuple[int, ...]]:
    h = cin // 4
    return {**_sn(f"{name}.conv1", (h, cin, 1, 1)), **_sn(f"{name}.conv2", (h, h, 3, 3)),
            **_sn(f"{name}.conv3", (h, h, 3, 3)), **_sn(f"{name}.conv4", (cout, h, 1, 1)),
            **_deep_ccbn(f"{name}.bn1", cin, cond), **{k: v for i in (2, 3, 4) for k, v in
                                                       _deep_ccbn(f"{name}.bn{i}", h, cond).items()}}


# BigGANdeep_Generator(G_ch=128, dim_z=128, resolution=128, G_attn='64', n_classes=100, G_shared=True,
# shared_dim=128, hier=True), as their ImageNet-100 main.py builds it: G_depth 2 blocks a stage, in/out
# channels 128 x [16, 16, 8, 4, 2] / [16, 8, 4, 2, 1], the conditional BNs read [shared(y), z] (256)
IMAGENET100 = {"shared.weight": (100, 128), **_sn("linear", (2048 * 16, 256)),
               **{k: v for i, (cin, cout) in enumerate(zip((2048, 2048, 1024, 512, 256), (2048, 1024, 512, 256, 128),
                                                            strict=True))
                  for k, v in {**_deep_block(f"blocks.{i}.0", cin, cin, 256),
                               **_deep_block(f"blocks.{i}.1", cin, cout, 256)}.items()},
               **{k: v for k, v in {**_sn_nobias("blocks.3.2.theta", (32, 256, 1, 1)),
                                    **_sn_nobias("blocks.3.2.phi", (32, 256, 1, 1)),
                                    **_sn_nobias("blocks.3.2.g", (128, 256, 1, 1)),
                                    **_sn_nobias("blocks.3.2.o", (256, 128, 1, 1)), "blocks.3.2.gamma": ()}.items()},
               "output_layer.0.gain": (128,), "output_layer.0.bias": (128,), "output_layer.0.stored_mean": (128,),
               "output_layer.0.stored_var": (128,), **_sn("output_layer.2", (3, 128, 3, 3))}


def test_the_deep_state_dict_is_their_imagenet100_generators():
    from cgankd.gan.biggan_deep import BigGANDeepG, architecture

    with torch.device("meta"):  # 128 px, G_ch 128: no need for the memory
        state = BigGANDeepG(100, 128, 128, 128, 128, 64).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == IMAGENET100
    assert architecture(state) == {"num_classes": 100, "resolution": 128, "shared_dim": 128, "ch": 128,
                                   "z_dim": 128, "attention": 64}


def test_a_released_biggan_deep_loads_samples_and_rebuilds_from_its_file(tmp_path):
    from cgankd import store
    from cgankd.gan.biggan_deep import BigGANDeepG
    from cgankd.gan.biggan_pytorch import load, read_architecture
    from cgankd.gan.train import sample

    torch.manual_seed(0)
    theirs = BigGANDeepG(5, 64, 8, 16, 16, 32).state_dict()  # attention at 32 px, 5 classes
    torch.save({k: v.abs() + 0.5 if k.endswith("stored_var") else v for k, v in theirs.items()}, tmp_path / "G.pth")
    g = load(tmp_path / "G.pth", 5, 64, 3, 16)
    assert isinstance(g, BigGANDeepG) and not g.training
    assert read_architecture(g.state_dict())["attention"] == 32
    imgs = sample(g, np.array([0, 4, 2]), 16, torch.Generator().manual_seed(1))
    assert imgs.shape == (3, 3, 64, 64) and imgs.dtype == np.uint8
    store.save_gan_generator(g, tmp_path / "g.pt", {"arch": "biggan-pytorch", "num_classes": 5,
                                                    "biggan_pytorch": read_architecture(g.state_dict())})
    again = store.load(tmp_path / "g.pt", "gan_generator")
    assert np.array_equal(sample(again, np.array([0, 4, 2]), 16, torch.Generator().manual_seed(1)), imgs)
    with pytest.raises(CgankdError, match=r"does not fit: it has num_classes 5 \(the data / config: 100\)"):
        load(tmp_path / "G.pth", 100, 64, 3, 16)


def _d_block(name: str, cin: int, cout: int, learnable_sc: bool) -> dict[str, tuple[int, ...]]:
    sc = _sn(f"{name}.conv_sc", (cout, cin, 1, 1)) if learnable_sc else {}
    return {**_sn(f"{name}.conv1", (cout, cin, 3, 3)), **_sn(f"{name}.conv2", (cout, cout, 3, 3)), **sc}


# D.state_dict() of Discriminator(D_ch=64, resolution=32, n_classes=100, D_attn='0', D_wide=True): D_arch[32]
# in 3 / 256 / 256 / 256, out 256 each, the first two halving (a learnt shortcut where widths differ or it
# halves), an SN linear to 1 and an SN embedding of the classes
CIFAR100_D = {**_d_block("blocks.0.0", 3, 256, True), **_d_block("blocks.1.0", 256, 256, True),
              **_d_block("blocks.2.0", 256, 256, False), **_d_block("blocks.3.0", 256, 256, False),
              **_sn("linear", (1, 256)), "embed.weight": (100, 256), "embed.u0": (1, 100), "embed.sv0": (1,)}


def test_gan_arch_biggan_pytorch_trains_their_g_against_their_d(tmp_path):
    """gan.arch: biggan_pytorch: their D's state dict, both nets at N(0, 0.02), a few training iterations,
    and the generator file rebuilds the trained G."""
    from cgankd import store
    from cgankd.config import GanCfg
    from cgankd.gan.archs import build_discriminator
    from cgankd.gan.train import sample, train_gan

    d = build_discriminator({"arch": "biggan_pytorch", "d_ch": 64}, 100, 32, 3)
    assert {k: tuple(v.shape) for k, v in d.state_dict().items()} == CIFAR100_D
    assert abs(float(d.blocks[2][0].conv1.weight.detach().std()) - 0.02) < 0.002
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8), np.arange(40) % 4
    cfg = GanCfg(arch="biggan_pytorch", iterations=3, batch_size=8, z_dim=8, g_ch=4, d_ch=4, d_steps=2, ema_start=1,
                 score_every=0, checkpoint_every=100)
    g, history = train_gan(cfg, x, y, 4, 0, tmp_path / "ck.pt")
    assert isinstance(g, BigGANPyTorchG) and np.isfinite(history[-1]["loss_d"])
    store.save_gan_generator(g, tmp_path / "g.pt", {"num_classes": 4, "resolution": 32, "channels": 3,
                                                    "gan": {**cfg.__dict__, "ccgan": cfg.ccgan.__dict__}})
    again = store.load(tmp_path / "g.pt", "gan_generator")
    labels = np.array([0, 3, 1])
    assert np.array_equal(sample(again, labels, 8, torch.Generator().manual_seed(0)),
                          sample(g, labels, 8, torch.Generator().manual_seed(0)))
    with pytest.raises(CgankdError, match="biggan_pytorch is the authors' class-conditional GAN"):
        build_discriminator({"arch": "biggan_pytorch", "d_ch": 4}, None, 32, 3)
