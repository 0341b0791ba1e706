import numpy as np
import torch

from cgankd.config import TrainCfg
from cgankd.data.prepared import Meta, Prepared, Split
from cgankd.models import MODELS, build_model, count_params
from cgankd.train.augment import random_crop_flip
from cgankd.train.data import EpochSampler
from cgankd.train.loop import fit

META = Meta(task="classification", source="t", channels=3, resolution=16, classes=["a", "b"])


def _split(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.integers(0, 80, (n, 3, 16, 16)).astype(np.uint8)
    x[y == 1, 0] += 150  # class 1 is red: learnable
    return Split(x, y)


def test_zoo_forward_backward_and_published_sizes():
    for name in MODELS.names():
        for ch, res in ((1, 16), (3, 32)):
            m = build_model(name, ch, 7, res)
            out = m(torch.rand(2, ch, res, res))
            out.sum().backward()
            assert out.shape == (2, 7)
    assert 1.1e6 < count_params(build_model("resnet8x4", 3, 100, 32)) < 1.3e6
    assert 7.3e6 < count_params(build_model("resnet32x4", 3, 100, 32)) < 7.5e6


def test_fit_learns_and_is_deterministic():
    cfg = TrainCfg(arch="convnet_xs", steps=30, batch_size=16, eval_every=15, lr=0.05)
    tr, va = _split(64, 0), _split(32, 1)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        res = fit(build_model("convnet_xs", 3, 2, 16), Prepared(META, {"train": tr, "val": va}), cfg, seed=0, desc="t")
        runs.append(res.history)
    assert runs[0] == runs[1]
    assert runs[0][-1]["val_acc"] > 90


def test_fit_mixes_fakes_into_batches():
    cfg = TrainCfg(steps=4, batch_size=12, eval_every=4)
    fakes = _split(40, 2)
    res = fit(build_model("convnet_xs", 3, 2, 16), Prepared(META, {"train": _split(20, 0), "val": _split(8, 1)}), cfg,
              seed=0, desc="t", fakes=fakes, fake_ratio=2.0)
    assert len(res.history) == 1


def test_crop_flip_and_sampler():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    out = random_crop_flip(x, pad=1, flip=True, gen=g)
    assert out.shape == x.shape
    assert torch.equal(random_crop_flip(x, pad=0, flip=False, gen=g), x)
    s = EpochSampler(5, torch.Generator().manual_seed(0))
    first = torch.cat([s.take(2), s.take(3)])
    assert sorted(first.tolist()) == [0, 1, 2, 3, 4]  # one full pass without repeats


def test_random_resized_crop_is_torchvisions_box_for_a_batch():
    """Areas of 8-100% of the image at ratios 3/4-4/3, resized back; an image of x-coordinates shows the
    box: its left and right edges and its width (``crop: resized``, the authors' ImageNet-100 transform)."""
    from cgankd.train.augment import random_resized_crop

    n, size = 4000, 64
    xs = torch.linspace(0, 1, size).expand(n, 1, size, size).contiguous()  # pixel value = its x position
    ys = xs.transpose(2, 3).contiguous()
    g = torch.Generator().manual_seed(0)
    out_x = random_resized_crop(xs, g)
    out_y = random_resized_crop(ys, torch.Generator().manual_seed(0))  # the same boxes
    w = out_x[:, 0, 0, -1] - out_x[:, 0, 0, 0]
    h = out_y[:, 0, -1, 0] - out_y[:, 0, 0, 0]
    assert out_x.shape == xs.shape and out_x.min() >= 0 and out_x.max() <= 1  # inside the image
    area = (w * h).clamp(min=0)
    assert 0.06 < area.min() < 0.12 and area.max() > 0.9 and abs(area.mean() - 0.54) < 0.05  # U(0.08, 1), clamped
    ratio = (w / h)[(w < 0.9) & (h < 0.9)]  # boxes not clamped by the image
    assert ratio.min() > 0.70 and ratio.max() < 1.42
    assert torch.allclose(random_resized_crop(xs[:2], torch.Generator().manual_seed(1), (1.0, 1.0), (1.0, 1.0)), xs[:2],
                          atol=1e-6)  # the whole image: itself
