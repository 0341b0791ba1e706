"""No step waits for the device: the operations that make the host wait for a GPU (a scalar read, a
data-dependent shape, a tensor's truth value) counted per iteration with torch.profiler on the CPU,
for the GAN of both tasks and the student step; the EMA's weight stays a device scalar; fp16's loss
scale survives a resume; repeated compiled runs in one process stay compiled."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from cgankd.compute.device import Runtime, compiler_problem, conv_autotune
from cgankd.config import GanCfg, TrainCfg
from cgankd.data.prepared import Meta, Prepared, Split
from cgankd.gan.ema import EMA
from cgankd.gan.train import train_gan
from cgankd.models import build_model
from cgankd.train.loop import fit

# what makes the host wait for a CUDA device (boolean-mask indexing runs aten::nonzero)
SYNC_OPS = {"aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::is_nonzero"}
# on the CPU the fused optimisers read their step counter on the host; on CUDA it is a device tensor
HOST_ONLY = {"aten::_fused_adam_", "aten::_fused_adamw_", "aten::_fused_sgd_"}
META = {"classification": Meta(task="classification", source="t", channels=3, resolution=8, classes=list("abcd")),
        "regression": Meta(task="regression", source="t", channels=3, resolution=8, label_range=[0.0, 90.0])}


def host_syncs(fn) -> Counter:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    found: Counter = Counter()
    for e in prof.events():
        if e.name not in SYNC_OPS:
            continue
        parent, inside = e.cpu_parent, False
        while parent is not None and not inside:
            inside, parent = parent.name in HOST_ONLY, parent.cpu_parent
        if not inside:
            found[e.name] += 1
    return found


def _data(task: str, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)
    return x, (np.arange(n) % 4 if task == "classification" else rng.random(n).round(2) * 90)


def _gan(task: str, iterations: int, tmp_path, arch: str = "biggan", **kw) -> tuple:
    x, y = _data(task)
    width = 8 if arch == "sagan" else 4  # the SAGAN's attention needs 8 channels
    cfg = GanCfg(arch=arch, iterations=iterations, batch_size=8, z_dim=8, g_ch=width, d_ch=width, embed_dim=8,
                 d_steps=2, ema_start=1, score_every=0, checkpoint_every=1000)
    labels, classes = (y, 4) if task == "classification" else (y / 90, None)
    return train_gan(cfg, x, labels, classes, 0, tmp_path / f"{task}-{arch}-{iterations}.pt", **kw)


@pytest.mark.parametrize(("task", "arch"), [("classification", "biggan"), ("regression", "biggan"),
                                            ("regression", "sagan")])
def test_no_host_sync_in_a_gan_iteration(tmp_path, task, arch):
    """Ten more iterations add no sync: the only reads are the every-LOG_EVERY ones and the last."""
    short = host_syncs(lambda: _gan(task, 3, tmp_path, arch))
    long = host_syncs(lambda: _gan(task, 13, tmp_path, arch))
    assert long == short, f"{long - short} more in 10 iterations"
    assert sum(short.values()) <= 4, short  # the one read of the losses at the end (stack.tolist)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_no_host_sync_in_a_student_step(monkeypatch, task):
    monkeypatch.setattr("cgankd.train.loop.metrics", lambda *a, **k: {"val_acc": 1.0, "val_mae": 1.0})
    x, y = _data(task)
    meta = META[task]
    out = 4 if task == "classification" else 1

    def run(steps: int) -> None:
        fit(build_model("convnet_xs", 3, out, 8), Prepared(meta, {"train": Split(x, y), "val": Split(x, y)}),
            TrainCfg(steps=steps, batch_size=8, eval_every=1000), seed=0, desc="t", fakes=Split(x, y), fake_ratio=1.0)

    assert host_syncs(lambda: run(13)) == host_syncs(lambda: run(3))


def test_ema_weight_is_a_device_scalar_filled_in_place():
    """No new tensor from the host per update (on CUDA a blocking copy); the compiled blend takes the
    same scalar every step, so a changing decay does not recompile it either."""
    src = torch.nn.Linear(3, 4)
    ema = EMA(src, decay=0.9, start=0, runtime=Runtime(torch.device("cpu"), compile=True))
    calls = []
    ema._blend = lambda *args: calls.append(args[-1])
    for step in range(3):
        ema.update(src, step)
    assert len(calls) == 3 and all(w is ema._weight for w in calls) and ema._weight.dim() == 0
    assert ema._weight.item() == pytest.approx(1 - 3 / 12)


def test_conv_autotune_is_on_inside_the_stage_only():
    before = torch.backends.cudnn.benchmark
    with conv_autotune(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.benchmark == before
    with conv_autotune(torch.device("cpu")):
        assert torch.backends.cudnn.benchmark == before


def test_fp16_loss_scale_is_checkpointed_and_resumed(tmp_path):
    """A resumed fp16 run goes on with the scaler's state (its scale and its count of good steps),
    not a fresh 65,536: the resumed run ends where an unbroken one does."""
    from cgankd.store import files

    rt = Runtime(torch.device("cpu"), "fp16")  # the CPU's fp16 autocast and GradScaler stand in for CUDA's
    x, y = _data("classification")
    cfg = GanCfg(iterations=6, batch_size=8, z_dim=8, g_ch=4, d_ch=4, embed_dim=8, score_every=0,
                 checkpoint_every=3, ema_start=1)
    train_gan(cfg, x, y, 4, 0, tmp_path / "whole.pt", runtime=rt)
    with pytest.raises(KeyboardInterrupt):
        train_gan(cfg, x, y, 4, 0, tmp_path / "broken.pt", runtime=rt, stop_after=4)
    train_gan(cfg, x, y, 4, 0, tmp_path / "broken.pt", runtime=rt)
    whole, broken = (files.read(tmp_path / f"{n}.pt", "gan_checkpoint")[1] for n in ("whole", "broken"))
    for name in ("scaler_g", "scaler_d"):
        assert whole[name] == broken[name], (whole[name], broken[name])


@pytest.mark.skipif(compiler_problem(torch.device("cpu")) is not None, reason="no C++ compiler for torch.compile")
def test_repeated_compiled_runs_stay_compiled(tmp_path):
    """compare / ablate call train_gan and fit again and again in one process: dynamo must reuse its
    graphs, not recompile per call until its limit and then fall back to eager without a word."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()  # what earlier tests of this worker compiled
    rt = Runtime.from_config("cpu", "fp32", True)
    x, y = _data("classification")
    meta = META["classification"]
    for i in range(10):
        (tmp_path / str(i)).mkdir()
        _gan("classification", 2, tmp_path / str(i), runtime=rt)
        fit(build_model("convnet_xs", 3, 4, 8), Prepared(meta, {"train": Split(x, y), "val": Split(x, y)}),
            TrainCfg(steps=2, batch_size=8, eval_every=1000), seed=i, desc="t", runtime=rt)
    # one frame each: D's loss, G's loss, the EMA blend, the student's forward; none traced again
    assert dict(counters["frames"]) == {"total": 4, "ok": 4}, {k: dict(v) for k, v in counters.items()}
    assert counters["stats"]["unique_graphs"] == 4
