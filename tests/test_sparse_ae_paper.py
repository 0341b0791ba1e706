"""The authors' sparse autoencoder for regression's cDR-RS (``extractor.ae: paper``): their sizes (derived
from UTKFace/models/autoencoder_extract.py at 8fcb117: ch 64, a 12,288-d code at 64 px), their training
(SGD on a step schedule over epochs, label-balanced batches, flips), the file rebuilds it, and the small
autoencoder trains exactly as before."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cgankd import store
from cgankd.base.errors import CgankdError
from cgankd.config import load_config
from cgankd.data.prepared import Meta, Split
from cgankd.features.autoencoders import AES, spec
from cgankd.features.sparse_ae import _balanced, train_sparse_ae
from cgankd.features.sparse_ae_paper import PaperSparseAE

META = Meta(task="regression", source="t", channels=3, resolution=16, label_range=[1.0, 30.0])


def _count(*modules: torch.nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def test_their_sizes_at_64_px():
    """encoder_extract 52,722,240 (8 convs with BN: 2,378,304; Linear 4,096 -> 12,288: 50,343,936),
    decoder_extract 52,230,787 (Linear 12,288 -> 4,096 with BatchNorm1d: 50,343,936; 8 convs with BN and a
    1x1 to RGB: 1,886,851), decoder_predict 13,243,905."""
    ae = PaperSparseAE(3, 64)
    assert ae.feat_dim == 12_288
    assert _count(ae.conv, ae.fc) == 2_378_304 + 50_343_936
    assert _count(ae.dec_fc, ae.deconv) == 50_343_936 + 1_886_851
    assert _count(ae.head) == 13_243_905
    h, recon, pred = ae.eval()(torch.rand(2, 3, 64, 64))
    assert h.shape == (2, 12_288) and recon.shape == (2, 3, 64, 64) and pred.shape == (2,)
    assert recon.min() >= -1 and recon.max() <= 1 and h.min() >= 0  # tanh image; a ReLU code


def test_balanced_batches_draw_labels_not_images():
    labels = torch.tensor([0.1] * 90 + [0.5] * 9 + [0.9] * 1)
    i = _balanced(labels, 30_000, torch.Generator().manual_seed(0))
    share = torch.stack([(labels[i] == v).float().mean() for v in (0.1, 0.5, 0.9)])
    assert torch.allclose(share, torch.full((3,), 1 / 3), atol=0.02)  # uniform images would give 0.9 / 0.09 / 0.01
    assert set(i[labels[i] == 0.5].tolist()) == set(range(90, 99))  # every image of a label is drawn


def _cfg(*extra: str):
    return load_config(None, ["task=regression", "extractor.ae=paper", "extractor.feat_dim=null",
                              "extractor.width=0.125", "extractor.epochs=4", "extractor.batch_size=16",
                              "extractor.schedule=step", "extractor.decay_at=[0.5]", "extractor.lr=0.01",
                              *extra]).extractor


def test_the_paper_autoencoder_trains_in_epochs_on_a_step_schedule_and_its_file_rebuilds_it(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(1.0, 31.0), 2).astype(np.float32)
    x = (np.linspace(0, 255, 60)[:, None, None, None] + rng.normal(0, 5, (60, 3, 16, 16))).clip(0, 255).astype(np.uint8)
    ec = _cfg()
    model, how = AES.get("paper")(ec, META, len(y))
    assert how.steps == 4 * (60 // 16) and how.balanced and how.flip
    assert [how.lr_factor(s) for s in (0, 5, 6, 11)] == pytest.approx([1, 1, 0.1, 0.1])
    assert isinstance(how.optimizer([torch.zeros(1, requires_grad=True)]), torch.optim.SGD)
    hist = train_sparse_ae(model, Split(x, y), META, how, seed=0)
    assert hist[-1]["step"] == 12 and all(np.isfinite(list(r.values())).all() for r in hist)
    store.save_extractor(model, spec(ec, META, model), tmp_path / "e.pt")
    again = store.load(tmp_path / "e.pt", "extractor")
    probe = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(again.features(probe), model.eval().features(probe))
    assert again.feat_dim == 3 * 16 * 16


def test_the_small_autoencoder_trains_as_before():
    """The same draws and optimiser as before the variants: Adam at ae_lr, uniform batches, no flips."""
    from cgankd.features.sparse_ae import SparseAE

    y = np.repeat(np.arange(1.0, 31.0), 2).astype(np.float32)
    x = np.random.default_rng(1).integers(0, 255, (60, 3, 16, 16)).astype(np.uint8)
    ec = load_config(None, ["task=regression", "extractor.steps=6", "extractor.batch_size=8"]).extractor
    model, how = AES.get("small")(ec, META, len(y))
    assert isinstance(model, SparseAE) and not how.balanced and not how.flip and how.steps == 6
    torch.manual_seed(0)
    twin = SparseAE(3, 16, 64)
    torch.manual_seed(0)
    model = SparseAE(3, 16, 64)
    train_sparse_ae(model, Split(x, y), META, how, seed=3)
    gen = torch.Generator().manual_seed(3)  # the old loop, written out
    torch.manual_seed(3)
    opt = torch.optim.Adam(twin.parameters(), lr=ec.ae_lr)
    xs, ys = torch.as_tensor(x).float() / 255, torch.as_tensor(META.scale(y))
    twin.train()
    for _ in range(6):
        i = torch.randint(60, (8,), generator=gen)
        h, recon, pred = twin(xs[i])
        loss = (torch.nn.functional.mse_loss(recon, xs[i]) + ec.sparsity * h.abs().mean()
                + torch.nn.functional.mse_loss(pred, ys[i]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values(), strict=True))


def test_a_code_of_c_h_w_is_the_paper_autoencoders_only():
    with pytest.raises(CgankdError, match="extractor.feat_dim"):
        load_config(None, ["extractor.feat_dim=null"])
    with pytest.raises(CgankdError, match="extractor.ae"):
        load_config(None, ["extractor.ae=large"])
