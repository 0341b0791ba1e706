"""Training speed, side by side in one run, for each device present (the CPU always, CUDA when
usable): GAN iterations/s (batch 64 and 256, default widths and twice the width), teacher and
student training images/s, make-fakes images/s (generate + teacher filter score), each on

- ``today``:   eager fp32, the losses read from the device after every step (the loops before the
               GPU work did this; data and random numbers now stay on the device in every path);
- ``no-sync``: eager fp32, the losses read once per measured window;
- ``compile``: fp32 + ``compile``, the losses read once per window;
- ``bf16``:    bf16 autocast, eager, the losses read once per window;
- ``fast``:    the fast path, ``precision`` bf16 + ``compile``, the losses read once per window;
- ``graphs``:  ``fast`` with ``compile_mode: reduce-overhead`` (CUDA graphs; CUDA only).

Every number is measured after a warm-up (compilation excluded) over a window of steps timed
between two host syncs. The GAN's shapes are measured one by one, every path at a shape before the
next; the results are written after each measurement, and a measurement that fails is recorded with
its error (the exit code is then 1) while the others go on. The project's own modules run
(``train_gan``, ``fit``, ``sample``, ``predict``); the data are random images of the right shape
(speed does not depend on content).

    python bench/train_speed.py                    # CPU (and CUDA when usable), JSON + markdown
    python bench/train_speed.py --device cuda --gan-steps 300 --warmup 50
    python bench/train_speed.py --device cpu --gan-configs 64x24,256x24   # what the README's CPU rows ran
    python bench/train_speed.py --device cuda --paths no-sync,fast,graphs --gan-configs 256x24 --roles gan
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cgankd.gan.train as gan_train  # noqa: E402
import cgankd.train.loop as loop  # noqa: E402
from cgankd.base.io import write_json, write_text  # noqa: E402
from cgankd.compute.device import Runtime, compiler_problem, cuda_usable  # noqa: E402
from cgankd.config import GanCfg, TrainCfg  # noqa: E402
from cgankd.data.prepared import Meta, Split  # noqa: E402
from cgankd.gan.train import sample, train_gan  # noqa: E402
from cgankd.models import build_model  # noqa: E402
from cgankd.train.evaluate import predict  # noqa: E402

PATHS = {"today": ("fp32", False, True, "default"), "no-sync": ("fp32", False, False, "default"),
         "compile": ("fp32", True, False, "default"), "bf16": ("bf16", False, False, "default"),
         "fast": ("bf16", True, False, "default"), "graphs": ("bf16", True, False, "reduce-overhead")}
CLASSES = 10
GOAL_IT_S = 150  # the GPU profile's GAN (batch 256) on one H100/H200: docs/gpu.md
META = Meta(task="classification", source="bench", channels=3, resolution=32, classes=[str(i) for i in range(CLASSES)])


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), np.arange(n) % CLASSES


def gan_rate(rt: Runtime, per_step_read: bool, batch: int, width: int, warmup: int, steps: int
             ) -> tuple[float, float]:
    """Iterations/s of train_gan between the syncs at step ``warmup`` and ``warmup + steps``, and
    the seconds to reach ``warmup`` (set-up and, with compile, the compilation)."""
    x, y = _data(1000)
    cfg = GanCfg(iterations=warmup + steps, batch_size=batch, g_ch=width, d_ch=width, checkpoint_every=10**9)
    stamps: dict[int, float] = {}
    gan_train.LOG_EVERY = 1 if per_step_read else warmup

    def log(step: int, row: dict[str, float]) -> None:
        if step in (warmup, warmup + steps):
            stamps[step] = time.perf_counter()

    torch._dynamo.reset()  # a fresh compile cache: no path runs on another's graphs or hits the recompile limit
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            train_gan(cfg, x, y, CLASSES, 0, Path(tmp) / "ck.pt", log=log, runtime=rt)
    finally:
        gan_train.LOG_EVERY = 50
    return steps / (stamps[warmup + steps] - stamps[warmup]), stamps[warmup] - t0


def gan_row(rt: Runtime, per_step_read: bool, batch: int, width: int, warmup: int, steps: int) -> dict:
    key = f"gan_b{batch}_w{width}"
    rate, warmup_s = gan_rate(rt, per_step_read, batch, width, warmup, steps)
    return {f"{key}_it_s": rate, f"{key}_warmup_s": warmup_s}


def fit_rate(rt: Runtime, per_step_read: bool, arch: str, batch: int, warmup: int, steps: int) -> float:
    """Training images/s of ``fit`` between the validation checks at ``warmup`` and ``warmup + steps``."""
    x, y = _data(2000)
    val = Split(*_data(50, 1))
    cfg = TrainCfg(arch=arch, steps=warmup + steps, batch_size=batch, eval_every=warmup)
    stamps: dict[int, float] = {}
    loop.READ_EVERY = 1 if per_step_read else 10**9
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = build_model(arch, 3, CLASSES, 32).to(rt.device)
    try:
        loop.fit(model, Split(x, y), val, META, cfg, 0, f"bench {arch}", runtime=rt,
                 log=lambda s, row: stamps.setdefault(s, time.perf_counter()))
    finally:
        loop.READ_EVERY = 50
    return steps * batch / (stamps[warmup + steps] - stamps[warmup])


def fakes_rate(rt: Runtime, n: int, batch: int) -> float:
    """Fakes/s of generate + teacher score (make-fakes' inner loop) with an untrained G and teacher."""
    from cgankd.gan.biggan import Generator

    g = Generator(CLASSES, 32, 3, 64, 24, 64).to(rt.device).eval()
    teacher = build_model("resnet20", 3, CLASSES, 32).to(rt.device).eval()
    labels = np.arange(n) % CLASSES
    for _ in range(2):  # warm-up, then the timed pass
        _sync(rt.device)
        t0 = time.perf_counter()
        with rt.autocast():
            imgs = sample(g, labels, 64, torch.Generator().manual_seed(0), batch)
            predict(teacher, imgs, batch)
        _sync(rt.device)
        dt = time.perf_counter() - t0
    return n / dt


def measured(row: dict, key: str, what: str, save, fn, *args) -> None:
    """Runs one measurement into ``row[key]``; a failure is recorded as ``row[key + "_error"]`` (the
    other rows go on), and the results are written after each one, so a run cut short keeps its rows."""
    try:
        value = fn(*args)
        row.update(value if isinstance(value, dict) else {key: value})
        print(f"{what}: {row[key]:.2f}", flush=True)
    except Exception as exc:  # a path that fails (a compile error, a CUDA graph crash) is a result too
        first = (str(exc).strip().splitlines() or [""])[0]
        row[f"{key}_error"] = f"{type(exc).__name__}: {first[:300]}"
        print(f"{what}: FAILED {row[f'{key}_error']}", flush=True)
        if row["device"] == "cuda":
            torch.cuda.empty_cache()
    save()


def run_device(dev: str, args: argparse.Namespace, rows: list[dict], save) -> None:
    compile_ok = compiler_problem(torch.device(dev)) is None
    paths = {k: v for k, v in PATHS.items() if k in args.paths.split(",") and (compile_ok or not v[1])
             and (dev == "cuda" or v[3] != "reduce-overhead")}  # CUDA graphs: CUDA only
    roles = args.roles.split(",")
    gan_steps = args.gan_steps if dev != "cpu" else args.cpu_gan_steps
    fit_steps = args.fit_steps if dev != "cpu" else args.cpu_fit_steps
    warm = args.warmup if dev != "cpu" else args.cpu_warmup
    configs = [tuple(map(int, c.split("x"))) for c in args.gan_configs.split(",")] if "gan" in roles else []
    mine = {}
    for name, (precision, compile_, _, mode) in paths.items():
        mine[name] = {"device": dev, "path": name, "precision": precision, "compile": compile_, "compile_mode": mode}
        rows.append(mine[name])
    # shape by shape, every path at the first shape before the next: a run cut short has whole columns
    for batch, width in configs:
        for name, (precision, compile_, per_step, mode) in paths.items():
            rt = Runtime.from_config(dev, precision, compile_, mode)
            measured(mine[name], f"gan_b{batch}_w{width}_it_s", f"{dev} {name} gan b{batch} w{width} it/s", save,
                     gan_row, rt, per_step, batch, width, warm, gan_steps)
    for name, (precision, compile_, per_step, mode) in paths.items():
        rt, row = Runtime.from_config(dev, precision, compile_, mode), mine[name]
        for role, arch in (("teacher", "resnet20"), ("student", "convnet_s")) if "fit" in roles else ():
            measured(row, f"{role}_img_s", f"{dev} {name} {role} {arch} img/s", save,
                     fit_rate, rt, per_step, arch, args.fit_batch, warm, fit_steps)
        if not per_step and "fakes" in roles:  # make-fakes has no per-step read
            measured(row, "fakes_img_s", f"{dev} {name} make-fakes img/s", save,
                     fakes_rate, rt, args.fakes, args.fakes_batch)


def markdown(result: dict) -> str:
    rows = result["rows"]
    keys = [k.removesuffix("_error") for r in rows for k in r
            if k.removesuffix("_error").endswith(("_it_s", "_img_s"))]
    keys = list(dict.fromkeys(keys))
    lines = [f"Machine: {result['machine']}; torch {result['torch']}. Warm-up excluded; "
             f"command: `{result['command']}`", "",
             "| device | path | " + " | ".join(keys) + " |", "|---|---|" + "---:|" * len(keys)]
    for r in rows:
        lines.append(f"| {r['device']} | {r['path']} | " + " | ".join(
            f"{r[k]:.1f}" if k in r else "failed" if f"{k}_error" in r else "-" for k in keys) + " |")
    errors = [f"- {r['device']} {r['path']} {k.removesuffix('_error')}: {v}" for r in rows for k, v in r.items()
              if k.endswith("_error")]
    if errors:
        lines += ["", "Failed measurements:", "", *errors]
    best = max((r[k] for r in rows if r["device"] == "cuda" for k in r if k.startswith("gan_b256_")
                and k.endswith("_it_s")), default=None)
    if best is not None:
        lines += ["", f"CUDA GAN at batch 256, the fastest path: {best:.1f} it/s "
                  f"(goal 150 it/s: {'reached' if best >= GOAL_IT_S else 'not reached'})"]
    lines += ["", "Seconds to the end of the GAN warm-up (set-up, and with compile the compilation):", ""]
    for r in rows:
        lines.append(f"- {r['device']} {r['path']}: " + ", ".join(
            f"{k.removesuffix('_warmup_s')} {v:.0f} s" for k, v in r.items() if k.endswith("_warmup_s")))
    lines += ["", "Ratios to the first path on the same device (`today` when measured):", ""]
    for r in rows:
        base = next(b for b in rows if b["device"] == r["device"])
        if r is base:
            continue
        lines.append(f"- {r['device']} {r['path']}: " + ", ".join(
            f"{k} x{r[k] / base[k]:.2f}" for k in keys if k in r and k in base))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["all", "cpu", "cuda"], default="all")
    ap.add_argument("--paths", default=",".join(PATHS), help="comma-separated, of: " + ", ".join(PATHS))
    ap.add_argument("--gan-configs", default="64x24,64x48,256x24,256x48",
                    help="GAN batch x width (g_ch = d_ch); profiles/gpu.yaml trains 256x24, the paper 512x64")
    ap.add_argument("--warmup", type=int, default=50, help="steps before timing (CUDA); compile happens here")
    ap.add_argument("--gan-steps", type=int, default=200, help="timed GAN iterations (CUDA)")
    ap.add_argument("--fit-steps", type=int, default=200, help="timed training steps (CUDA)")
    ap.add_argument("--cpu-warmup", type=int, default=5)
    ap.add_argument("--cpu-gan-steps", type=int, default=10)
    ap.add_argument("--cpu-fit-steps", type=int, default=20)
    ap.add_argument("--fit-batch", type=int, default=64)
    ap.add_argument("--fakes", type=int, default=5000)
    ap.add_argument("--fakes-batch", type=int, default=500)
    ap.add_argument("--roles", default="gan,fit,fakes", help="what to time: gan, fit (teacher and student), fakes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_speed"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not cuda_usable():
        print("train_speed: --device cuda, but no usable CUDA GPU here (torch.cuda.is_available() is False); "
              "use --device cpu", file=sys.stderr)
        raise SystemExit(2)
    devices = ["cpu"] if args.device in ("all", "cpu") else []
    if args.device in ("all", "cuda") and cuda_usable():
        devices.append("cuda")
    machine = platform.processor() or platform.machine()
    if "cuda" in devices:
        machine += f" + {torch.cuda.get_device_name(0)}"
    result = {"machine": f"{machine}, {args.threads} CPU threads", "torch": torch.__version__, "rows": [],
              "command": "python bench/train_speed.py " + " ".join(sys.argv[1:])}

    def save() -> None:
        write_json(args.out + ".json", result)
        write_text(args.out + ".md", markdown(result))

    for dev in devices:
        run_device(dev, args, result["rows"], save)
    save()
    print(markdown(result))
    if any(k.endswith("_error") for r in result["rows"] for k in r):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
