"""Rendering speed of the embedded `objects` set: 10,000 images at 32x32 on one process.

    python bench/render_speed.py [--n 10000] [--resolution 32]
Writes bench/results/render_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from cgankd.base.io import write_json
from cgankd.config import RenderCfg
from cgankd.data.sources.embedded import render_objects


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--resolution", type=int, default=32)
    args = ap.parse_args()
    knobs = RenderCfg(resolution=args.resolution)
    labels = np.resize(np.arange(10), args.n)
    render_objects(knobs, labels[:100], seed=1)  # warm-up (imports, model building)
    t = time.perf_counter()
    images = render_objects(knobs, labels, seed=0)
    dt = time.perf_counter() - t
    result = {"n": args.n, "resolution": args.resolution, "seconds": round(dt, 2),
              "images_per_second": round(args.n / dt, 1), "shape": list(images.shape),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    write_json(Path(__file__).parent / "results" / "render_speed.json", result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
