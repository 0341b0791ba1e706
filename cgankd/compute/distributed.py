"""Data-parallel training under ``torchrun`` (DistributedDataParallel), and nothing when not.

``torchrun --nproc-per-node N -m cgankd train-student ...`` starts N processes with ``RANK`` /
``WORLD_SIZE`` / ``LOCAL_RANK`` / ``MASTER_ADDR`` set; a plain ``cgankd`` process has none of them
and runs exactly as before (world size 1: no process group, no wrapper, no slicing).

Every rank draws the *global* batch from the same seeded generator (the config's batch size is the
global batch), augments it, and trains on its own share (every N-th row); DDP averages the gradients,
so a step matches the one-process step up to floating-point order, with two exceptions named here:

- batch statistics: on CUDA the models' BatchNorm layers become ``SyncBatchNorm`` (statistics of
  the global batch, as in one process). PyTorch's SyncBatchNorm has no CPU implementation, so on
  the CPU (gloo) each rank normalises with its slice's statistics: a documented difference, bounded
  in ``tests/test_ddp.py``;
- DiffAugment in the GAN draws from each rank's global RNG for its slice.

Only rank 0 writes outputs, checkpoints and MLflow runs; the GAN's EMA and its label-score checks
run there too, and the early-stop decision is broadcast to the other ranks.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import os
from typing import Any

import torch
from torch import nn

from cgankd.base.errors import CgankdError
from cgankd.compute.device import Runtime

TIMEOUT = datetime.timedelta(minutes=10)  # a rank lost for this long fails the others instead of hanging them


def world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def is_main() -> bool:
    """True in a plain process and on rank 0 of a torchrun job: the one that writes and logs."""
    return rank() == 0


def active() -> bool:
    return world() > 1


def runtime(rt: Runtime) -> Runtime:
    """Joins the torchrun job (once per process) and returns the runtime on this rank's device:
    ``cuda:LOCAL_RANK`` for a CUDA runtime (NCCL), the CPU with gloo. Unchanged without torchrun."""
    if not active():
        return rt
    local = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if rt.device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise CgankdError("torchrun --nproc-per-node", f"local rank {local} but this machine has "
                              f"{torch.cuda.device_count()} GPU(s); start at most that many processes per node")
        rt = dataclasses.replace(rt, device=torch.device("cuda", local))
        torch.cuda.set_device(rt.device)
    if not torch.distributed.is_initialized():
        backend = "nccl" if rt.device.type == "cuda" else "gloo"
        try:
            torch.distributed.init_process_group(backend, timeout=TIMEOUT)
        except (RuntimeError, ValueError) as exc:
            raise CgankdError("torchrun rendezvous", f"could not join the job ({str(exc).splitlines()[0]}); "
                              "check MASTER_ADDR / MASTER_PORT or torchrun's --rdzv-endpoint") from None
    return rt


def check_batch(batch: int, key: str) -> int:
    """The per-rank batch; the world size must divide the global batch."""
    n = world()
    if batch % n:
        raise CgankdError(f"param {key}", f"{batch} is not divisible by the torchrun world size {n}; "
                          f"use a multiple of {n} or --nproc-per-node that divides {batch}")
    return batch // n


def shard(t: torch.Tensor | None) -> torch.Tensor | None:
    """This rank's share of a global batch, every ``world``-th row from its rank on, so that each
    rank gets the same mix of real and fake rows (the whole batch without torchrun)."""
    if t is None or not active():
        return t
    return t[rank()::world()]


def shard_fields(batch: Any) -> Any:
    """A dataclass of batch tensors with every tensor field sliced by ``shard``."""
    if not active():
        return batch
    return dataclasses.replace(batch, **{f.name: shard(getattr(batch, f.name)) for f in dataclasses.fields(batch)})


class _Call(nn.Module):
    """A module whose forward is ``fn`` of ``owner``: DDP wraps a distiller's ``forward_train``."""

    def __init__(self, owner: nn.Module, method: str) -> None:
        super().__init__()
        self.owner = owner
        self.method = method

    def forward(self, *args: Any) -> Any:
        return getattr(self.owner, self.method)(*args)


def wrap(module: nn.Module, method: str | None = None, buffers: bool = True) -> nn.Module:
    """``module`` (or its ``method``) in DistributedDataParallel, with SyncBatchNorm on CUDA;
    ``module`` itself without torchrun. Parameters that need no gradient (a frozen teacher) are
    not synchronised. ``buffers`` False: rank 0's buffers are not broadcast before each forward
    (DDP's in-place rewrite would change buffers a compiled graph reads)."""
    if not active():
        return module
    dev = next(module.parameters()).device
    if dev.type == "cuda":
        for name, child in list(module.named_children()):  # in place: callers keep their references
            module.add_module(name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
    target = _Call(module, method) if method else module
    ids = [dev.index] if dev.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # torch >= 2.14 names it forward_sync_buffers (and still syncs once at construction: wanted here)
    new = "forward_sync_buffers" in inspect.signature(ddp).parameters
    sync = "forward_sync_buffers" if new else "broadcast_buffers"
    return ddp(target, device_ids=ids, **{sync: buffers})


def from_main(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision, on every rank (the GAN's early stop)."""
    if not active():
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    torch.distributed.broadcast(t, 0)
    return bool(t.item())


def finish() -> None:
    """Leave the job cleanly (NCCL warns about a process group never destroyed)."""
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
