"""What a GPU machine has for cgankd, written before anything runs (bench/gpu_check.sh's first step):
one line per piece, ``ok`` with its version or ``missing`` with what its absence disables.

    python bench/gpu_preflight.py DEVICE        # DEVICE: cuda (default) or cpu

Needs nothing but Python: a torch that does not import is reported as that, not as "no GPU". Exit 0
when DEVICE can run (torch imports; for cuda, a usable GPU), else 2 with the reason on stderr.
"""

from __future__ import annotations

import importlib
import platform
import shutil
import sys
import sysconfig
from pathlib import Path


def version(name: str) -> tuple[str | None, str]:
    """(version, None) or (None, why it does not import)."""
    try:
        mod = importlib.import_module(name)
    except Exception as exc:  # ImportError, or a broken install's own error
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return getattr(mod, "__version__", "?"), ""


def lines(device: str) -> tuple[list[str], str | None]:
    """The report's lines, and the reason DEVICE cannot run (None when it can)."""
    out = [f"ok: python {platform.python_version()} ({sys.executable}), {platform.machine()}"]
    torch_v, why = version("torch")
    if torch_v is None:
        return [*out, f"missing: torch ({why}): disables everything"], f"torch does not import: {why}"
    import torch

    out.append(f"ok: torch {torch_v}, CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    fatal = None
    try:
        usable = torch.cuda.is_available() and torch.cuda.device_count() > 0
    except Exception as exc:  # a broken driver reports through exceptions
        usable, why = False, f"{type(exc).__name__}: {exc}"
    else:
        why = "torch.cuda.is_available() is False (no driver or no GPU visible)"
    if usable:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.append(f"ok: GPU {i} {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability "
                       f"{p.major}.{p.minor}, bf16 {torch.cuda.is_bf16_supported()}")
    else:
        out.append(f"missing: a usable CUDA GPU ({why}): disables every CUDA step")
        fatal = f"no usable CUDA GPU: {why}" if device == "cuda" else None
    triton_v, why = version("triton")
    compiled = "disables compile=true on CUDA (the bf16+compile and CUDA-graph rows, the GPU profile's compile)"
    out.append(f"ok: triton {triton_v}" if triton_v else f"missing: triton ({why}): {compiled}")
    cc = next((shutil.which(c) for c in ("cc", "gcc", "clang") if shutil.which(c)), None)
    out.append(f"ok: C compiler {cc}" if cc else f"missing: a C compiler for Triton's launcher: {compiled}")
    cxx = next((shutil.which(c) for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
    out.append(f"ok: C++ compiler {cxx}" if cxx else "missing: a C++ compiler: disables compile=true on the CPU")
    header = Path(sysconfig.get_paths()["include"], "Python.h")
    out.append(f"ok: {header}" if header.is_file() else f"missing: {header} (python3-dev): {compiled}")
    onnx_v, why = version("onnx")
    out.append(f"ok: onnx {onnx_v}" if onnx_v else f"missing: onnx ({why}): disables export and the pipeline step")
    ort_v, why = version("onnxruntime")
    if ort_v:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        out.append(f"ok: onnxruntime {ort_v}, providers {', '.join(providers)}")
        if "CUDAExecutionProvider" not in providers:
            out.append("missing: onnxruntime's CUDAExecutionProvider (onnxruntime-gpu): serving runs on the CPU")
    else:
        out.append(f"missing: onnxruntime ({why}): disables ONNX parity and serving")
    for name, what in (("PIL", "image folders and the figures"), ("torchvision", "the model zoo's torchvision nets"),
                       ("yaml", "every stage (params.yaml)"), ("numpy", "everything"), ("pytest", "the tests step")):
        v, why = version(name)
        out.append(f"ok: {name} {v}" if v else f"missing: {name} ({why}): disables {what}")
    return out, fatal


def main() -> None:
    device = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    report, fatal = lines(device)
    print("\n".join(report), flush=True)
    if fatal:
        print(f"gpu_preflight: {fatal}", file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    main()
