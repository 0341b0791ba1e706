"""Meshes built from boxes and cylinders (prisms); faces are convex polygons with outward normals."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Mesh:
    """Vertices (V, 3), one vertex-index array per face, and a colour group per face.

    Coordinates: y up, the object stands on y = 0, centred on x = z = 0; +z faces the camera at
    yaw 0, so the "front" of a model (a chair's seat edge) points to +z.
    """

    vertices: list[np.ndarray] = field(default_factory=list)
    faces: list[np.ndarray] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    _count: int = 0

    def add(self, verts: np.ndarray, faces: list[list[int]], group: int) -> None:
        self.vertices.append(np.asarray(verts, dtype=np.float64))
        for f in faces:
            self.faces.append(np.asarray(f, dtype=np.int64) + self._count)
            self.groups.append(group)
        self._count += len(verts)

    def box(self, center: tuple[float, float, float], size: tuple[float, float, float],
            group: int) -> None:
        c = np.asarray(center, dtype=np.float64)
        h = np.asarray(size, dtype=np.float64) / 2
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
        # vertex index = 4*(x>0) + 2*(y>0) + (z>0); each face listed counter-clockwise from outside
        faces = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
        self.add(c + signs * h, faces, group)

    def cylinder(self, center: tuple[float, float, float], radius: float, height: float,
                 group: int, sides: int = 8, top_radius: float | None = None) -> None:
        """A vertical prism (frustum when ``top_radius`` differs) centred at ``center``."""
        top_radius = radius if top_radius is None else top_radius
        a = np.linspace(0, 2 * np.pi, sides, endpoint=False)
        cx, cy, cz = center
        bottom = np.stack([cx + radius * np.cos(a), np.full(sides, cy - height / 2),
                           cz + radius * np.sin(a)], 1)
        top = np.stack([cx + top_radius * np.cos(a), np.full(sides, cy + height / 2),
                        cz + top_radius * np.sin(a)], 1)
        faces = [[i, sides + i, sides + (i + 1) % sides, (i + 1) % sides] for i in range(sides)]
        faces.append(list(range(sides)))  # bottom cap
        faces.append(list(range(2 * sides - 1, sides - 1, -1)))  # top cap
        self.add(np.concatenate([bottom, top]), faces, group)

    def compile(self) -> CompiledMesh:
        verts = np.concatenate(self.vertices)
        sizes = np.array([len(f) for f in self.faces])
        max_k = int(sizes.max())
        idx = np.stack([np.pad(f, (0, max_k - len(f)), mode="edge") for f in self.faces])
        # Newell's method: robust outward normal for any planar convex polygon
        p = verts[idx]
        q = np.roll(p, -1, axis=1)
        n = np.stack([
            ((p[..., 1] - q[..., 1]) * (p[..., 2] + q[..., 2])).sum(1),
            ((p[..., 2] - q[..., 2]) * (p[..., 0] + q[..., 0])).sum(1),
            ((p[..., 0] - q[..., 0]) * (p[..., 1] + q[..., 1])).sum(1),
        ], 1)
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        lo, hi = verts.min(0), verts.max(0)
        centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2])
        radius = float(np.linalg.norm(verts - centre, axis=1).max())
        return CompiledMesh(verts - centre, idx, sizes, n, np.asarray(self.groups), radius)


@dataclass(frozen=True)
class CompiledMesh:
    """A mesh in arrays, centred on its bounding-box centre, ready for the renderer."""

    vertices: np.ndarray  # (V, 3)
    face_index: np.ndarray  # (F, K) padded by repeating the last vertex
    face_size: np.ndarray  # (F,)
    normals: np.ndarray  # (F, 3)
    groups: np.ndarray  # (F,)
    radius: float
