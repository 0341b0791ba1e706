"""Furniture-like object models: one builder per class, each drawing random proportions.

Colour groups: 0 = frame / legs, 1 = main surface (seat, top, body), 2 = accent (back, cushion,
shade, doors). Every model's front points to +z, so yaw 0 shows its front.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cgankd.base.registry import Registry
from cgankd.data.mesh import Mesh

FRAME, SURFACE, ACCENT = 0, 1, 2
Builder = Callable[[np.random.Generator], Mesh]
FURNITURE: Registry[Builder] = Registry("object class")


def _legs(m: Mesh, w: float, d: float, h: float, t: float, round_legs: bool, y0: float = 0.0,
          inset: float = 0.0) -> None:
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w / 2 - t / 2 - inset), sz * (d / 2 - t / 2 - inset)
            if round_legs:
                m.cylinder((x, y0 + h / 2, z), t / 2, h, FRAME, sides=6)
            else:
                m.box((x, y0 + h / 2, z), (t, h, t), FRAME)


@FURNITURE.register("chair")
def chair(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    w, d = rng.uniform(0.45, 0.6), rng.uniform(0.45, 0.6)
    seat_h, t = rng.uniform(0.4, 0.5), rng.uniform(0.04, 0.07)
    seat_t = rng.uniform(0.04, 0.08)
    _legs(m, w, d, seat_h, t, bool(rng.random() < 0.4))
    m.box((0, seat_h + seat_t / 2, 0), (w, seat_t, d), SURFACE)
    back_h = rng.uniform(0.35, 0.55)
    m.box((0, seat_h + seat_t + back_h / 2, -d / 2 + t / 2), (w, back_h, t), ACCENT)
    if rng.random() < 0.4:  # armrests
        for sx in (-1, 1):
            m.box((sx * (w / 2 - t / 2), seat_h + seat_t + 0.2, 0), (t, t, d * 0.9), FRAME)
            m.box((sx * (w / 2 - t / 2), seat_h + seat_t + 0.1, d / 2 - t), (t, 0.2, t), FRAME)
    return m


@FURNITURE.register("table")
def table(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    h, top_t = rng.uniform(0.65, 0.8), rng.uniform(0.04, 0.07)
    if rng.random() < 0.35:  # round pedestal table
        r = rng.uniform(0.4, 0.55)
        m.cylinder((0, h - top_t / 2, 0), r, top_t, SURFACE, sides=12)
        m.cylinder((0, (h - top_t) / 2, 0), 0.05, h - top_t, FRAME, sides=6)
        m.cylinder((0, 0.02, 0), r * 0.5, 0.04, FRAME, sides=8)
    else:
        w, d, t = rng.uniform(0.9, 1.3), rng.uniform(0.6, 0.85), rng.uniform(0.05, 0.08)
        _legs(m, w, d, h - top_t, t, bool(rng.random() < 0.3), inset=0.03)
        m.box((0, h - top_t / 2, 0), (w, top_t, d), SURFACE)
    return m


@FURNITURE.register("stool")
def stool(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    h, r, t = rng.uniform(0.45, 0.75), rng.uniform(0.16, 0.24), rng.uniform(0.03, 0.05)
    seat_t = rng.uniform(0.04, 0.07)
    n_legs = int(rng.integers(3, 5))
    for a in np.linspace(0, 2 * np.pi, n_legs, endpoint=False) + rng.uniform(0, np.pi):
        m.cylinder((0.8 * r * np.cos(a), (h - seat_t) / 2, 0.8 * r * np.sin(a)), t / 2,
                   h - seat_t, FRAME, sides=5)
    m.cylinder((0, h - seat_t / 2, 0), r, seat_t, SURFACE, sides=10)
    m.cylinder((0, h * 0.35, 0), 0.75 * r, 0.025, FRAME, sides=10)  # foot ring
    return m


@FURNITURE.register("sofa")
def sofa(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    w, d = rng.uniform(1.3, 1.9), rng.uniform(0.7, 0.9)
    base_h, leg_h = rng.uniform(0.25, 0.35), rng.uniform(0.05, 0.12)
    arm_w, arm_h = rng.uniform(0.12, 0.2), rng.uniform(0.2, 0.3)
    _legs(m, w, d, leg_h, 0.06, False)
    m.box((0, leg_h + base_h / 2, 0), (w, base_h, d), SURFACE)
    back_t, back_h = rng.uniform(0.15, 0.25), rng.uniform(0.3, 0.45)
    m.box((0, leg_h + base_h + back_h / 2, -d / 2 + back_t / 2), (w, back_h, back_t), ACCENT)
    for sx in (-1, 1):
        m.box((sx * (w / 2 - arm_w / 2), leg_h + base_h + arm_h / 2, 0), (arm_w, arm_h, d),
              SURFACE)
    return m


@FURNITURE.register("bed")
def bed(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    w, d = rng.uniform(1.0, 1.6), rng.uniform(1.9, 2.2)
    frame_h, mat_h = rng.uniform(0.2, 0.3), rng.uniform(0.15, 0.25)
    m.box((0, frame_h / 2, 0), (w, frame_h, d), FRAME)
    m.box((0, frame_h + mat_h / 2, 0.02), (w * 0.96, mat_h, d * 0.94), SURFACE)
    head_h = rng.uniform(0.8, 1.2)
    m.box((0, head_h / 2, -d / 2 - 0.04), (w + 0.08, head_h, 0.08), ACCENT)
    foot_h = rng.uniform(0.3, 0.5)
    m.box((0, foot_h / 2, d / 2 + 0.04), (w + 0.08, foot_h, 0.08), ACCENT)
    m.box((0, frame_h + mat_h + 0.05, -d / 2 + 0.25), (w * 0.7, 0.1, 0.3), ACCENT)  # pillow
    return m


@FURNITURE.register("shelf")
def shelf(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    w, d, h = rng.uniform(0.6, 1.0), rng.uniform(0.25, 0.4), rng.uniform(1.2, 1.9)
    t = rng.uniform(0.03, 0.05)
    for sx in (-1, 1):
        m.box((sx * (w / 2 - t / 2), h / 2, 0), (t, h, d), FRAME)
    m.box((0, h / 2, -d / 2 + t / 4), (w, h, t / 2), ACCENT)
    for y in np.linspace(t / 2, h - t / 2, int(rng.integers(3, 6))):
        m.box((0, y, 0), (w - 2 * t, t, d), SURFACE)
    return m


@FURNITURE.register("lamp")
def lamp(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    h, base_r = rng.uniform(1.2, 1.7), rng.uniform(0.15, 0.25)
    shade_h, shade_r = rng.uniform(0.25, 0.4), rng.uniform(0.18, 0.3)
    m.cylinder((0, 0.025, 0), base_r, 0.05, FRAME, sides=10)
    m.cylinder((0, (h - shade_h) / 2, 0), 0.025, h - shade_h, FRAME, sides=6)
    m.cylinder((0, h - shade_h / 2, 0), shade_r, shade_h, ACCENT, sides=10,
               top_radius=shade_r * rng.uniform(0.5, 0.8))
    return m


@FURNITURE.register("desk")
def desk(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    w, d, h = rng.uniform(1.1, 1.5), rng.uniform(0.55, 0.75), rng.uniform(0.7, 0.78)
    top_t, t = 0.04, rng.uniform(0.04, 0.07)
    m.box((0, h - top_t / 2, 0), (w, top_t, d), SURFACE)
    ped_w = rng.uniform(0.35, 0.45)
    side = 1 if rng.random() < 0.5 else -1
    m.box((side * (w / 2 - ped_w / 2), (h - top_t) / 2, 0), (ped_w, h - top_t, d * 0.95), ACCENT)
    for k in range(3):  # drawer handles on the pedestal's front
        m.box((side * (w / 2 - ped_w / 2), (h - top_t) * (0.2 + 0.3 * k), d * 0.475 + 0.015),
              (ped_w * 0.4, 0.03, 0.03), FRAME)
    for sz in (-1, 1):
        m.box((-side * (w / 2 - t / 2), (h - top_t) / 2, sz * (d / 2 - t / 2)), (t, h - top_t, t),
              FRAME)
    return m


@FURNITURE.register("bench")
def bench(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    w, d, h = rng.uniform(1.2, 1.8), rng.uniform(0.3, 0.42), rng.uniform(0.4, 0.48)
    seat_t = rng.uniform(0.04, 0.07)
    if rng.random() < 0.5:  # slab ends
        for sx in (-1, 1):
            m.box((sx * (w / 2 - 0.15), (h - seat_t) / 2, 0), (0.05, h - seat_t, d * 0.9), FRAME)
    else:
        _legs(m, w, d, h - seat_t, 0.05, False, inset=0.08)
    n_planks = int(rng.integers(1, 4))
    gap = 0.01 if n_planks > 1 else 0.0
    pw = (d - gap * (n_planks - 1)) / n_planks
    for k in range(n_planks):
        m.box((0, h - seat_t / 2, -d / 2 + pw / 2 + k * (pw + gap)), (w, seat_t, pw), SURFACE)
    return m


@FURNITURE.register("cabinet")
def cabinet(rng: np.random.Generator) -> Mesh:
    m = Mesh()
    w, d, h = rng.uniform(0.6, 1.0), rng.uniform(0.4, 0.6), rng.uniform(0.8, 1.6)
    foot = rng.uniform(0.04, 0.1)
    _legs(m, w, d, foot, 0.06, bool(rng.random() < 0.5), inset=0.02)
    m.box((0, foot + h / 2, 0), (w, h, d), SURFACE)
    n_doors = int(rng.integers(1, 3))
    dw = w / n_doors
    for k in range(n_doors):
        x = -w / 2 + dw * (k + 0.5)
        m.box((x, foot + h / 2, d / 2 + 0.005), (dw * 0.9, h * 0.92, 0.01), ACCENT)
        hx = x + (dw * 0.3 if k % 2 == 0 else -dw * 0.3)
        m.box((hx, foot + h * 0.55, d / 2 + 0.025), (0.03, 0.12, 0.03), FRAME)
    return m


CLASS_NAMES: tuple[str, ...] = (
    "chair", "table", "stool", "sofa", "bed", "shelf", "lamp", "desk", "bench", "cabinet",
)
