"""onnxruntime's execution providers: which ones a session asks for (``auto``: CUDA when usable),
and the check that it got them. Used where ONNX models run or are registered (serve, ops)."""

from __future__ import annotations

import ctypes
from pathlib import Path

from cgankd.base.errors import CgankdError

PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def cuda_usable() -> bool:
    """onnxruntime-gpu lists the CUDA provider even without a driver (and then prints an error
    when a session asks for it): check for the driver library first."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def choose_providers(choice: str = "auto") -> list[str]:
    """``auto``: CUDA when usable, else CPU; ``cpu``; ``cuda`` (an error without a usable GPU)."""
    if choice == "auto":
        return PROVIDERS["cuda" if cuda_usable() else "cpu"]
    if choice not in PROVIDERS:
        raise CgankdError(f"providers {choice!r}", "choose auto, cpu or cuda")
    if choice == "cuda" and not cuda_usable():
        raise CgankdError("providers 'cuda'", "no usable CUDA (onnxruntime-gpu and an NVIDIA driver are needed)")
    return PROVIDERS[choice]


def check_providers(asked: list[str], got: list[str], choice: str, what: str) -> str | None:
    """The session must run what was asked: ``cuda`` without the CUDA provider in the session is an
    error (onnxruntime falls back to the CPU silently when its CUDA libraries do not load); ``auto``
    gets a one-line note instead. Returns the note, or None."""
    if "CUDAExecutionProvider" not in asked or "CUDAExecutionProvider" in got:
        return None
    if choice == "cuda":
        raise CgankdError(what, "onnxruntime did not start its CUDA provider (the CUDA / cuDNN libraries did "
                          f"not load); the session runs {', '.join(got)}; use --providers cpu or fix the install")
    return f"cgankd: onnxruntime's CUDA provider did not start for {Path(what).name}; serving on the CPU"
