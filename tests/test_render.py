import numpy as np
import pytest

from cgankd.config import RenderCfg
from cgankd.data.furniture import CLASS_NAMES, FURNITURE
from cgankd.data.render import Pose, Style, render
from cgankd.data.scene import build_models
from cgankd.data.sources.embedded import rc_angles, render_objects, render_rc

STYLE = Style(colors=np.full((3, 3), 0.8), light=np.array([0.0, 0.6, 0.8]), ambient=0.3,
              background=(np.zeros(3), np.zeros(3)), horizon=0.5)


def test_rendering_is_deterministic_by_seed():
    knobs = RenderCfg(resolution=16)
    y = np.arange(10)
    a, b = render_objects(knobs, y, seed=3), render_objects(knobs, y, seed=3)
    c = render_objects(knobs, y, seed=4)
    assert a.dtype == np.uint8 and a.shape == (10, 3, 16, 16)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_same_angle_same_image_and_a_plus_90_differs():
    m = build_models("chair", 1, 1234)[0]
    for a in (0.0, 10.0, 45.0):
        img = render(m, Pose(a, 30.0), STYLE, 32)
        assert np.array_equal(img, render(m, Pose(a, 30.0), STYLE, 32))
        assert np.abs(img.astype(int) - render(m, Pose(a + 90, 30.0), STYLE, 32)).mean() > 3


def test_rc_labels_follow_angle_and_seed():
    knobs = RenderCfg(resolution=16)
    ang = np.array([5.0, 5.0, 50.0], np.float32)
    x = render_rc(knobs, ang, 3, [30.0, 30.0], seed=0)
    assert np.array_equal(x, render_rc(knobs, ang, 3, [30.0, 30.0], seed=0))
    grid = rc_angles(0.1)
    assert len(grid) == 900 and grid[0] == 0.0 and grid[-1] == pytest.approx(89.9)


def test_every_class_builds_a_closed_mesh_with_outward_normals():
    assert set(CLASS_NAMES) == set(FURNITURE.names())
    for name in CLASS_NAMES:
        for mesh in build_models(name, 3, 7):
            v, idx, n = mesh.vertices, mesh.face_index, mesh.normals
            assert np.allclose(np.linalg.norm(n, axis=1), 1.0)
            # every face normal points away from the object's interior for most faces
            centre = v.mean(0)
            face_c = v[idx].mean(1)
            assert ((face_c - centre) * n).sum(1).mean() > 0


def test_objects_differ_between_classes_on_average():
    knobs = RenderCfg(resolution=16, clutter=0, noise=0.0)
    y = np.repeat(np.arange(10), 20)
    x = render_objects(knobs, y, seed=0).reshape(200, -1).astype(float)
    means = np.stack([x[y == c].mean(0) for c in range(10)])
    assert np.linalg.norm(means[0] - means[4]) > 1.0  # chair vs bed silhouettes
