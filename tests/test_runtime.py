"""Device, precision and compile: one-line errors (exit 2, nothing written), the fast paths on the
CPU, and the fp32 CPU path unchanged by them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cgankd.base.errors import CgankdError
from cgankd.compute.device import Runtime, compiler_problem, cuda_usable
from cgankd.config import GanCfg, TrainCfg
from cgankd.gan.biggan import Discriminator
from cgankd.gan.ema import EMA
from cgankd.gan.train import train_gan

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = not cuda_usable()


def _cli(out: Path, *sets: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "cgankd", "prepare", "-p", str(ROOT / "params.yaml"), "-S", f"out_dir={out}"]
    for s in sets:
        args += ["-S", s]
    return subprocess.run(args, capture_output=True, text=True, cwd=out.parent,
                          env={**os.environ, "CGANKD_TRACKING": "off", **(env or {})}, timeout=300)


BAD = [
    (["device=tpu"], "param device: must be auto, cpu, cuda or cuda:N"),
    (["device=cuda:x"], "param device"),
    (["precision=int8"], "param precision: must be fp32, bf16, fp16 or auto"),
    (["device=cpu", "precision=fp16"], "param precision: fp16 needs a CUDA device"),
]
if NO_CUDA:
    BAD.append((["device=cuda"], "param device: cuda asked for, but no usable CUDA GPU here"))
    BAD.append((["device=cuda:1"], "param device: cuda:1 asked for"))


@pytest.mark.parametrize("sets,message", BAD)
def test_bad_runtime_is_one_line_exit_2_and_writes_nothing(tmp_path, sets, message):
    out = tmp_path / "out"
    res = _cli(out, *sets)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert not out.exists()


def test_compile_without_a_compiler_is_one_line_exit_2(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    (empty / "python").symlink_to(sys.executable)
    out = tmp_path / "out"
    res = _cli(out, "device=cpu", "compile=true", env={"PATH": str(empty)})
    assert res.returncode == 2, res.stderr
    assert "param compile: torch.compile on the CPU needs a C++ compiler" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_triton_needs_a_c_compiler_and_python_headers(tmp_path, monkeypatch):
    """A bare CUDA image without gcc or Python.h breaks every Triton path at its first kernel: said
    when the config is read, not minutes into a stage."""
    pytest.importorskip("triton")
    cuda, bin_, include = torch.device("cuda"), tmp_path / "bin", tmp_path / "include"
    bin_.mkdir()
    include.mkdir()
    (bin_ / "gcc").symlink_to("/bin/true")
    (include / "Python.h").touch()
    monkeypatch.setenv("PATH", str(bin_))
    monkeypatch.setattr("sysconfig.get_paths", lambda: {"include": str(include)})
    assert compiler_problem(cuda) is None
    (include / "Python.h").unlink()
    assert "Python's headers (Python.h in " + str(include) in compiler_problem(cuda)
    (bin_ / "gcc").unlink()
    assert "needs a C compiler on PATH for Triton's launcher" in compiler_problem(cuda)


def test_compile_mode_is_checked_and_cuda_graphs_need_cuda():
    assert Runtime.from_config("cpu", "fp32", True, "max-autotune").mode == "max-autotune"
    with pytest.raises(CgankdError, match="must be one of default, reduce-overhead, max-autotune"):
        Runtime.from_config("cpu", "fp32", True, "fast")
    with pytest.raises(CgankdError, match="reduce-overhead .CUDA graphs. needs a CUDA device"):
        Runtime.from_config("cpu", "fp32", True, "reduce-overhead")


def test_runtime_defaults_and_autocast():
    rt = Runtime.from_config("cpu", "bf16", False)
    assert rt.device.type == "cpu" and rt.scaler() is None
    with rt.autocast():
        y = torch.nn.Linear(4, 4)(torch.rand(2, 4))
    assert y.dtype == torch.bfloat16
    assert Runtime.from_config("auto", "fp32", False).device.type == ("cpu" if NO_CUDA else "cuda")
    with pytest.raises(CgankdError):
        Runtime.from_config("cpu", "fp16", False)


def test_precision_auto_is_bf16_only_where_the_hardware_computes_it(monkeypatch, capsys):
    """``auto`` follows torch's detection of AVX512-BF16 / AMX (both answers tried); an explicit bf16 on a
    CPU without them runs, and says in one line that it is emulated."""
    import cgankd.compute.device as device

    for native, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(device, "native_bf16", lambda dev, native=native: native)
        monkeypatch.setattr(device, "_SAID", {})
        assert Runtime.from_config("cpu", "auto", False).precision == want
        capsys.readouterr()
        assert Runtime.from_config("cpu", "bf16", False).precision == "bf16"
        assert ("bf16 is emulated here" in capsys.readouterr().err) is not native
        Runtime.from_config("cpu", "bf16", False)
        assert "bf16 is emulated here" not in capsys.readouterr().err  # once per process
    monkeypatch.undo()
    assert device.native_bf16(torch.device("cpu")) == bool(torch.cpu._is_avx512_bf16_supported()
                                                          or torch.cpu._is_amx_tile_supported())


def test_memory_format_auto_is_channels_last_on_the_cpu_and_stays_bit_reproducible(tmp_path):
    """channels_last nets and batches on the CPU: the same numbers run to run (fp32, fixed threads), other
    numbers than the contiguous run (so its checkpoints are not resumed by a contiguous run), finite."""
    assert Runtime.from_config("cpu", "fp32", False, memory_format="auto").channels_last
    if compiler_problem(torch.device("cpu")) is None:  # compiled, inductor picks the layout itself
        assert not Runtime.from_config("cpu", "fp32", True, memory_format="auto").channels_last
    assert not Runtime.from_config("cpu", "fp32", False, memory_format="contiguous").channels_last
    with pytest.raises(CgankdError, match="param memory_format: must be one of auto, channels_last, contiguous"):
        Runtime.from_config("cpu", "fp32", False, memory_format="nhwc")
    cfg = GanCfg(iterations=3, batch_size=8, z_dim=8, g_ch=4, d_ch=4, embed_dim=8, checkpoint_every=100, ema_start=1)
    x, y = _gan_data()
    cl = Runtime.from_config("cpu", "fp32", False, memory_format="channels_last")
    runs = [train_gan(cfg, x, y, 4, seed=0, ckpt_path=tmp_path / f"{i}.pt", runtime=rt)
            for i, rt in enumerate((cl, cl, Runtime.from_config("cpu", "fp32", False)))]
    conv = runs[0][0].blocks[0].conv1.weight_orig
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert runs[0][1] == runs[1][1] and runs[0][1] != runs[2][1]
    from cgankd.gan.train import fingerprint
    assert fingerprint(cfg, 0, x, y, cl) != fingerprint(cfg, 0, x, y, Runtime.from_config("cpu", "fp32", False))


def test_spectral_norm_stays_fp32_under_bf16_and_matches_fp32():
    torch.manual_seed(0)
    d = Discriminator(3, 16, 3, ch=4)
    u_before = d.blocks[0].conv1.weight_u.clone()
    x, y = torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d(x, y)
    assert d.fc.weight_u.dtype == torch.float32 and d.fc.weight.dtype == torch.float32
    assert not torch.equal(u_before, d.blocks[0].conv1.weight_u)  # the power iteration ran (training mode)
    d.eval()
    w, u = d.fc.weight.clone(), d.fc.weight_u.clone()
    d(x, y)  # eval mode: no update
    assert torch.equal(w, d.fc.weight) and torch.equal(u, d.fc.weight_u)


def test_foreach_ema_equals_per_tensor_lerp():
    torch.manual_seed(0)
    src = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ema = EMA(src, decay=0.9, start=0)
    ref = [p.detach().clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in src.parameters():
            p.add_(1.0)
    src(torch.rand(5, 3))  # moves the BN buffers
    ema.update(src, step=3)
    d = min(0.9, 4 / 13)
    for r, e, s in zip(ref, ema.model.parameters(), src.parameters(), strict=True):
        assert torch.equal(e, r.lerp(s.detach(), 1.0 - d))
    for e, s in zip(ema.model.buffers(), src.buffers(), strict=True):
        assert torch.equal(e, s)


def _gan_data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (20, 3, 16, 16), dtype=np.uint8), np.arange(20) % 4


def test_fast_paths_train_the_gan_on_cpu(tmp_path):
    """bf16 gives finite losses, a full history and fp32 master weights (compiled too: the whole
    pipeline compiled in bf16, tests/test_runtime_e2e.py)."""
    cfg = GanCfg(iterations=4, batch_size=8, z_dim=8, g_ch=4, d_ch=4, embed_dim=8, checkpoint_every=2, ema_start=1)
    x, y = _gan_data()
    for i, rt in enumerate([Runtime.from_config("cpu", "bf16", False)]):
        g, hist = train_gan(cfg, x, y, 4, seed=0, ckpt_path=tmp_path / f"{i}.pt", runtime=rt)
        assert [h["step"] for h in hist] == [1, 2, 3, 4]
        assert all(np.isfinite(h["loss_d"]) and np.isfinite(h["loss_g"]) for h in hist)
        assert all(p.dtype == torch.float32 for p in g.parameters())


def test_losses_are_read_in_batches_not_per_step(tmp_path, monkeypatch):
    """No host sync per step: the GAN and fit read their losses once per LOG_EVERY / READ_EVERY."""
    calls = []
    real = torch.Tensor.tolist

    def counting(t):
        calls.append(t.shape)
        return real(t)

    monkeypatch.setattr(torch.Tensor, "tolist", counting)
    cfg = GanCfg(iterations=120, batch_size=4, z_dim=8, g_ch=4, d_ch=4, embed_dim=8, checkpoint_every=1000,
                 ema_start=1)
    x, y = _gan_data()
    _, hist = train_gan(cfg, x, y, 4, seed=0, ckpt_path=tmp_path / "g.pt")
    assert len(hist) == 120 and len([c for c in calls if len(c) == 2]) == 3  # steps 50, 100, 120

    from cgankd.data.prepared import Meta, Prepared, Split
    from cgankd.models import build_model
    from cgankd.train.loop import fit

    calls.clear()
    meta = Meta(task="classification", source="t", channels=3, resolution=16, classes=["a", "b", "c", "d"])
    monkeypatch.setattr("cgankd.train.loop.metrics", lambda *a, **k: {"val_acc": 1.0})
    res = fit(build_model("convnet_xs", 3, 4, 16), Prepared(meta, {"train": Split(x, y), "val": Split(x, y)}),
              TrainCfg(steps=100, batch_size=8, eval_every=100), seed=0, desc="t")
    assert len(res.history) == 1 and len(calls) == 2  # step 50, and step 100 (read + validation)
