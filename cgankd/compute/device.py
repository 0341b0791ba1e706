"""Where and how the core computes: the device, the autocast precision and ``torch.compile``.

Chosen once per stage from the top-level params ``device`` / ``precision`` / ``compile``
(``Runtime.from_config``); models are placed when they are built or loaded, and the core follows
the device of the model it is given.

- ``device``: ``auto`` (CUDA when usable, else the CPU) | ``cpu`` | ``cuda`` | ``cuda:N``.
- ``precision``: ``fp32`` | ``bf16`` | ``fp16`` | ``auto``: autocast of forward passes. Parameters,
  optimiser state, the EMA copy, losses and the spectral-norm power iteration stay fp32
  (cgankd/gan/spectral.py); fp16 needs CUDA and uses a gradient scaler. ``auto`` is bf16 where the
  hardware computes it natively (a CUDA GPU with bf16; a CPU with AVX512-BF16 or AMX, detected by
  torch at run time), else fp32. bf16 on a CPU without it is emulated and slower (docs/gpu.md).
- ``memory_format``: ``auto`` | ``channels_last`` | ``contiguous``: the layout of the trained
  convolution nets and their input batches. ``auto`` is channels_last on the CPU in eager mode
  (oneDNN's convolutions, pooling and batch norm are faster on it: bench/gan_cpu.py) and on CUDA
  with bf16 or fp16 (tensor cores), contiguous otherwise: compiled on the CPU, inductor picks the
  convolutions' layout itself, and forcing channels_last was slower there.
- ``compile``: ``torch.compile`` (inductor) of the training steps; a graph is compiled once per
  shape, so it pays on long runs, not on a handful of steps. ``compile_mode``: torch.compile's
  mode: ``default`` | ``reduce-overhead`` (CUDA graphs: each compiled graph of a GAN step replayed
  as one launch; CUDA only) | ``max-autotune`` (slower compile, tuned kernels).

Reproducibility: random numbers are drawn from generators on the model's device, seeded as
before, so the fp32 CPU path is bit-identical to the eager one; a CUDA run is not bit-identical
to a CPU run, and not run-to-run either where cuDNN picks non-deterministic kernels.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from cgankd.base.errors import CgankdError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
# the modes whose compiled calls replay as CUDA graphs on CUDA, and the same mode without the graphs
GRAPH_MODES = {"reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
T = TypeVar("T", torch.Tensor, nn.Module)
CXX = ("c++", "g++", "clang++")
CC = ("cc", "gcc", "clang")


def python_headers() -> bool:
    return Path(sysconfig.get_paths()["include"], "Python.h").is_file()


def cuda_usable() -> bool:
    try:
        return torch.cuda.is_available() and torch.cuda.device_count() > 0
    except Exception:  # a broken driver install reports through exceptions
        return False


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when usable else the CPU; refuses an unknown name or a missing GPU."""
    if not DEVICE_RE.match(name or ""):
        raise CgankdError("param device", f"must be auto, cpu, cuda or cuda:N, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if cuda_usable() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not cuda_usable():
            raise CgankdError("param device", f"{name} asked for, but no usable CUDA GPU here "
                              "(use device=auto or device=cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CgankdError("param device", f"{name} asked for, but this machine has "
                              f"{torch.cuda.device_count()} GPU(s) (cuda:0 ...)")
    return dev


def compiler_problem(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot run here, or None."""
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if device.type == "cuda":  # inductor's Triton kernels, and Triton's launcher, built at run time
        if not importlib.util.find_spec("triton"):
            return "torch.compile on CUDA needs triton (pip install triton)"
        if not any(shutil.which(c) for c in CC):
            return "torch.compile on CUDA needs a C compiler on PATH for Triton's launcher (apt-get install gcc)"
        if not python_headers():
            return (f"torch.compile on CUDA needs Python's headers (Python.h in {sysconfig.get_paths()['include']}) "
                    f"for Triton's launcher (apt-get install python3-dev)")
        return None
    if not any(shutil.which(c) for c in CXX):
        return "torch.compile on the CPU needs a C++ compiler on PATH (apt-get install g++)"
    return None


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (as torch detects them; without them the CPU emulates bf16, slowly)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = getattr(torch, "cpu", None)
    return any(bool(getattr(cpu, f, lambda: False)()) for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


_SAID: dict[str, bool] = {}


def _precision(name: str, dev: torch.device) -> str:
    if name == "auto":
        return "bf16" if native_bf16(dev) else "fp32"
    if name == "bf16" and dev.type == "cpu" and not native_bf16(dev) and not _SAID.get("bf16"):
        _SAID["bf16"] = True  # once per process: the config is checked, then each stage builds its runtime
        print("cgankd: precision=bf16 on a CPU without AVX512-BF16 or AMX: bf16 is emulated here and slower "
              "than fp32 (docs/gpu.md); precision=auto picks what this machine computes fast", file=sys.stderr)
    return name


def _channels_last(name: str, dev: torch.device, precision: str, compile: bool) -> bool:
    if name == "auto":  # compiled, inductor lays the convolutions out itself (and faster: bench/gan_cpu.py)
        return (dev.type == "cpu" and not compile) or (dev.type == "cuda" and precision != "fp32")
    return name == "channels_last"


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    precision: str = "fp32"
    compile: bool = False
    mode: str = "default"
    channels_last: bool = False

    @classmethod
    def from_config(cls, device: str, precision: str, compile: bool, mode: str = "default",
                    memory_format: str = "contiguous") -> Runtime:
        """The checked runtime: one-line errors (exit 2) name the key and what to do."""
        if precision not in (*PRECISIONS, "auto"):
            raise CgankdError("param precision", f"must be fp32, bf16, fp16 or auto, got {precision!r}")
        if memory_format not in MEMORY_FORMATS:
            raise CgankdError("param memory_format", f"must be one of {', '.join(MEMORY_FORMATS)}, "
                              f"got {memory_format!r}")
        if mode not in COMPILE_MODES:
            raise CgankdError("param compile_mode", f"must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
        dev = resolve_device(device)
        if mode == "reduce-overhead" and compile and dev.type != "cuda":
            raise CgankdError("param compile_mode", "reduce-overhead (CUDA graphs) needs a CUDA device; "
                              "on the CPU use compile_mode=default")
        if precision == "fp16" and dev.type != "cuda":
            raise CgankdError("param precision", "fp16 needs a CUDA device; on the CPU use bf16 or fp32")
        if compile:
            problem = compiler_problem(dev)
            if problem:
                raise CgankdError("param compile", f"{problem}; or set compile=false")
        precision = _precision(precision, dev)
        return cls(dev, precision, compile, mode, _channels_last(memory_format, dev, precision, compile))

    @property
    def dtype(self) -> torch.dtype | None:
        return PRECISIONS[self.precision]

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast of forward passes at the chosen precision (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler | None:
        """fp16 needs loss scaling; bf16 and fp32 do not."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None

    def compiled(self, fn: Callable[..., Any], graphs: bool = True) -> Callable[..., Any]:
        """``torch.compile(fn)`` when ``compile`` is on; the module object itself is left as it is,
        so its state dict, deep copies and eval-mode predictions stay plain eager PyTorch.
        ``graphs=False``: the same mode without CUDA graphs, for a function that updates its inputs in
        place (a graph would copy them in and out, or be skipped)."""
        if not self.compile:
            return fn
        mode = self.mode if graphs else GRAPH_MODES.get(self.mode, self.mode)
        return torch.compile(fn, dynamic=False, mode=mode)

    @property
    def graphs(self) -> bool:
        """Whether compiled calls replay as CUDA graphs (reduce-overhead or max-autotune, on CUDA)."""
        return self.compile and self.device.type == "cuda" and self.mode in GRAPH_MODES

    def step_begin(self) -> None:
        """Marks the start of a training iteration for CUDA-graph trees, so that the graphs of the last
        one are not waited for (their outputs may be overwritten from here on: ``keep`` what is read later)."""
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()

    def keep(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` detached, and under CUDA graphs copied, so that it outlives the next compiled call
        (CUDA-graph trees reuse an output's memory once a later graph runs): the losses read every N
        steps go through it."""
        return t.detach().clone() if self.graphs else t.detach()

    def layout(self, x: T) -> T:
        """A module (converted in place) or a batch of images in this runtime's memory format."""
        if not self.channels_last:
            return x
        if isinstance(x, nn.Module):
            return x.to(memory_format=torch.channels_last)
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    def generator(self, seed: int) -> torch.Generator:
        """A seeded generator on this device (random numbers never cross to the host)."""
        return torch.Generator(device=self.device).manual_seed(seed)


CPU = Runtime(torch.device("cpu"))


@contextlib.contextmanager
def conv_autotune(device: torch.device) -> Iterator[None]:
    """cuDNN's benchmark mode (each convolution shape timed once, the fastest kernel kept) for one
    stage with fixed shapes, on CUDA; the process's setting is restored after, so later stages (and
    their varying validation shapes) do not inherit it."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def module_device(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
