"""The authors' SAGAN CcGAN (``gan.arch: sagan``) and their released CcGAN files: the state dict has
their key names and shapes (derived from UTKFace/models/SAGAN.py and ResNet_embed.py's model_y2h at
8fcb117: gene_ch = disc_ch 64, z 256, dim_embed 128, 64 px), their checkpoint and y2h files load
through ``gan.init`` / ``gan.ccgan.y2h_init`` with the label map between their normalisation and
cgankd's, make-fakes samples from them, and a wrong file is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shrunk
from kit import authors_h5, loaded_gan

from cgankd import store
from cgankd.base.errors import CgankdError
from cgankd.gan import ccgan_release
from cgankd.gan.label_embed import Y2H
from cgankd.gan.sagan import Discriminator, Generator
from cgankd.stages import make_fakes
from cgankd.store import files


def _sn(name: str, out: int, fan_in: int, shape: tuple[int, ...], bias: bool = True) -> dict[str, tuple[int, ...]]:
    """torch.nn.utils.spectral_norm's entries for a layer of weight ``shape``."""
    return {f"{name}.weight_orig": shape, f"{name}.weight_u": (out,), f"{name}.weight_v": (fan_in,),
            **({f"{name}.bias": (out,)} if bias else {})}


def _conv(name: str, cin: int, cout: int, k: int) -> dict[str, tuple[int, ...]]:
    return _sn(name, cout, cin * k * k, (cout, cin, k, k))


def _bn(name: str, c: int, affine: bool) -> dict[str, tuple[int, ...]]:
    stats = {f"{name}.running_mean": (c,), f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()}
    return {**stats, **({f"{name}.weight": (c,), f"{name}.bias": (c,)} if affine else {})}


def _attn(name: str, c: int) -> dict[str, tuple[int, ...]]:
    return {**_conv(f"{name}.snconv1x1_theta", c, c // 8, 1), **_conv(f"{name}.snconv1x1_phi", c, c // 8, 1),
            **_conv(f"{name}.snconv1x1_g", c, c // 2, 1), **_conv(f"{name}.snconv1x1_attn", c // 2, c, 1),
            f"{name}.sigma": (1,)}


def _gen_block(name: str, cin: int, cout: int, e: int) -> dict[str, tuple[int, ...]]:
    cbn = {f"{name}.cond_bn{i}.{k}": v for i, c in ((1, cin), (2, cout)) for k, v in
           {**_bn("bn", c, False), "embed_gamma.weight": (c, e), "embed_beta.weight": (c, e)}.items()}
    return {**cbn, **_conv(f"{name}.snconv2d1", cin, cout, 3), **_conv(f"{name}.snconv2d2", cout, cout, 3),
            **_conv(f"{name}.snconv2d0", cin, cout, 1)}


def _disc_block(name: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    return {**_conv(f"{name}.snconv2d1", cin, cout, 3), **_conv(f"{name}.snconv2d2", cout, cout, 3),
            **_conv(f"{name}.snconv2d0", cin, cout, 1)}


# SAGAN_Generator(z_dim=256, gene_ch=64, dim_embed=128): snlinear0 to 1024 x 4 x 4, blocks 1024->512->256->128,
# self-attention at 128 (32x32), block4 128->64, an affine BN and an SN conv to RGB
THEIR_G = {**_sn("snlinear0", 16384, 256, (16384, 256)),
           **{k: v for i, (a, b) in enumerate(((1024, 512), (512, 256), (256, 128), (128, 64)), 1)
              for k, v in _gen_block(f"block{i}", a, b, 128).items()},
           **_attn("self_attn", 128), **_bn("bn", 64, True), **_conv("snconv2d1", 64, 3, 3)}
# SAGAN_Discriminator(disc_ch=64, dim_embed=128): an optimised block to 64, self-attention, blocks to 1024
THEIR_D = {**_disc_block("opt_block1", 3, 64), **_attn("self_attn", 64),
           **{k: v for i, (a, b) in enumerate(((64, 128), (128, 256), (256, 512), (512, 1024)), 1)
              for k, v in _disc_block(f"block{i}", a, b).items()},
           **_sn("snlinear1", 1, 16384, (1, 16384)), **_sn("sn_embedding1", 16384, 128, (16384, 128), bias=False)}
THEIR_Y2H = {f"main.{i}.{p}": s for i, (fin, fout) in zip((0, 3, 6, 9, 12), ((1, 128), *[(128, 128)] * 4), strict=True)
             for p, s in (("weight", (fout, fin)), ("bias", (fout,)))} | {
             f"main.{i}.{p}": (128,) for i in (1, 4, 7, 10) for p in ("weight", "bias")}


def _shapes(module: torch.nn.Module, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items() if not k.startswith(skip)}


def test_the_state_dicts_are_the_authors_sagans_and_y2h():
    y2h = Y2H(128)
    g = Generator(None, 64, 3, 256, 64, 128, y2h)
    assert _shapes(g, ("embed.", "label_map")) == THEIR_G
    assert _shapes(Discriminator(None, 64, 3, 64, 128, y2h), ("embed.",)) == THEIR_D
    assert _shapes(y2h) == THEIR_Y2H


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_sagan_trains_a_step_at_each_size_and_d_scores_each_image(resolution):
    torch.manual_seed(0)
    g, d = Generator(None, resolution, 3, 16, 8, 32), Discriminator(None, resolution, 3, 8, 32)
    y = torch.rand(5)
    x = g(torch.randn(5, 16), y)
    assert x.shape == (5, 3, resolution, resolution) and x.abs().max() <= 1
    out = d(x, y)
    assert out.shape == (5,)
    out.mean().backward()
    assert all(p.grad is not None for p in g.parameters() if p.requires_grad)
    classes = Generator(4, resolution, 1, 16, 8, 32)  # a class table for classification
    assert classes(torch.randn(3, 16), torch.tensor([0, 3, 1])).shape == (3, 1, resolution, resolution)


def _their_files(tmp_path, resolution: int, ch: int, z_dim: int, embed: int = 32):
    """The authors' files as their generate_synthetic_data.py writes them: through nn.DataParallel
    (``module.`` keys), under ``netG_state_dict`` and ``net_state_dict`` (random weights)."""
    torch.manual_seed(0)
    y2h = Y2H(embed)
    g = Generator(None, resolution, 3, z_dim, ch, embed)
    g_state = {f"module.{k}": v for k, v in g.state_dict().items() if not k.startswith(("embed.", "label_map"))}
    torch.save({"netG_state_dict": g_state, "netD_state_dict": {}}, tmp_path / "ckpt_SAGAN.pth")
    torch.save({"net_state_dict": {f"module.{k}": v for k, v in y2h.state_dict().items()}}, tmp_path / "y2h.pth")
    return tmp_path / "ckpt_SAGAN.pth", tmp_path / "y2h.pth", g_state


def test_gan_init_loads_the_authors_ccgan_and_make_fakes_samples_from_it(tmp_path):
    root = authors_h5(tmp_path / "utk.h5", "utkface")  # ages 1..30 at 16 px
    g_file, y2h_file, g_state = _their_files(tmp_path, 16, 8, 16)
    cfg = shrunk(tmp_path / "out", "task=regression", "data.source=h5", f"data.root={root}", "data.resolution=16",
                 "data.n_per_class=null", "data.n_val_per_class=1", f"gan.init={g_file}", "gan.z_dim=16",
                 f"gan.ccgan.y2h_init={y2h_file}", "gan.ccgan.init_label_range=[0, 60]", "subsample.enabled=false")
    loaded_gan(cfg)
    meta, state = files.read(tmp_path / "out" / "gan" / "generator.pt", "gan_generator")
    assert meta["gan"]["arch"] == "sagan" and meta["gan"]["g_ch"] == 8 and meta["gan"]["embed_dim"] == 32
    assert torch.equal(state["block1.snconv2d1.weight_u"], g_state["module.block1.snconv2d1.weight_u"])
    lo, hi = meta["label_range"]  # cgankd's scaled label s is lo + s (hi - lo) years; theirs is years / 60
    a, b = state["label_map"].tolist()
    assert a == pytest.approx((hi - lo) / 60) and b == pytest.approx(lo / 60)
    g = store.load(tmp_path / "out" / "gan" / "generator.pt", "gan_generator")  # as make-fakes rebuilds it
    theirs = Generator(None, 16, 3, 16, 8, 32, Y2H(32)).eval()  # their G and y2h, fed their label: years / 60
    theirs.load_state_dict({k.removeprefix("module."): v for k, v in g_state.items()}, strict=False)
    y2h_state = torch.load(y2h_file, weights_only=True)["net_state_dict"]
    theirs.embed.inner.load_state_dict({k.removeprefix("module."): v for k, v in y2h_state.items()})
    z, s = torch.randn(4, 16), torch.tensor([0.0, 0.3, 0.7, 1.0])
    with torch.no_grad():
        assert torch.allclose(g(z, s), theirs(z, (lo + s * (hi - lo)) / 60), atol=1e-6)
    make_fakes.run(cfg)
    fakes = np.load(tmp_path / "out" / "fakes" / "fakes.npz")
    assert fakes["fake_images"].shape[1:] == (3, 16, 16) and len(fakes["fake_images"]) > 0


def test_a_wrong_ccgan_file_is_refused_in_one_line(tmp_path):
    g_file, y2h_file, _ = _their_files(tmp_path, 16, 8, 16)
    args = (16, 3, 16, (1.0, 30.0), None)
    with pytest.raises(CgankdError, match=r"does not fit: it has resolution 16 \(the data / config: 32\)"):
        ccgan_release.load(g_file, y2h_file, 32, 3, 16, (1.0, 30.0), None)
    with pytest.raises(CgankdError, match="needs the label embedding it was trained with"):
        ccgan_release.load(g_file, None, *args)
    with pytest.raises(CgankdError, match=r"holds no state dict of tensors under netG_state_dict \(found: net_"):
        ccgan_release.load(y2h_file, y2h_file, *args)  # the files swapped
    torch.save(Y2H(32).state_dict(), tmp_path / "bare.pth")  # a bare state dict of something else
    with pytest.raises(CgankdError, match=r"not the authors' SAGAN generator \(no 'snconv2d1.weight_orig'"):
        ccgan_release.load(tmp_path / "bare.pth", y2h_file, *args)
    torch.save({"net_state_dict": Y2H(64).state_dict()}, tmp_path / "wide.pth")
    with pytest.raises(CgankdError, match="not a y2h net of 32 wide"):
        ccgan_release.load(g_file, tmp_path / "wide.pth", *args)
    torch.save({"model": [1, 2]}, tmp_path / "odd.pth")
    with pytest.raises(CgankdError, match=r"holds no state dict of tensors under netG_state_dict \(found: model\)"):
        ccgan_release.load(tmp_path / "odd.pth", y2h_file, *args)
    with pytest.raises(CgankdError, match="init_label_range"):
        ccgan_release.load(g_file, y2h_file, 16, 3, 16, (1.0, 30.0), (5.0, 5.0))
