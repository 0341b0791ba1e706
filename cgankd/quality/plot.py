"""One PNG: a bar per processing step for each quality metric (FID, Intra-FID, label score,
diversity), so a user sees at a glance what subsampling / filtering / adjustment did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cgankd.io import atomic_path

STEP_COLORS = [(150, 150, 150), (60, 140, 60), (30, 90, 200), (130, 60, 180), (210, 60, 40)]


def quality_png(table: dict[str, dict[str, float]], metrics: list[tuple[str, str]], path: Path) -> None:
    """``table``: step -> metric -> value; ``metrics``: (key, title) per panel."""
    steps = list(table)
    pw, ph, pad = 260, 200, 30
    img = Image.new("RGB", (pad + len(metrics) * (pw + pad), ph + 3 * pad + 16 * len(steps)), "white")
    d = ImageDraw.Draw(img)
    for k, (key, title) in enumerate(metrics):
        x0 = pad + k * (pw + pad)
        vals = np.array([table[s].get(key, np.nan) for s in steps], float)
        top = np.nanmax(vals) if np.isfinite(vals).any() else 1.0
        top = top if top > 0 else 1.0
        d.text((x0, 6), title, fill="black")
        d.line([x0, pad + ph, x0 + pw, pad + ph], fill="black")
        bw = pw // max(len(steps), 1)
        for i, v in enumerate(vals):
            if not np.isfinite(v):
                continue
            h = int((ph - 14) * v / top)
            d.rectangle([x0 + i * bw + 4, pad + ph - h, x0 + (i + 1) * bw - 4, pad + ph],
                        fill=STEP_COLORS[i % len(STEP_COLORS)])
            d.text((x0 + i * bw + 4, pad + ph - h - 12), f"{v:.3g}", fill="black")
    for i, s in enumerate(steps):
        y = pad * 2 + ph + 16 * i
        d.rectangle([pad, y, pad + 12, y + 10], fill=STEP_COLORS[i % len(STEP_COLORS)])
        d.text((pad + 18, y - 1), f"{s} (n={int(table[s].get('n', 0))})", fill="black")
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
