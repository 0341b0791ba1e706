"""Each loader reads a tiny fixture built here in its standard layout; bad input gets its error."""

import csv
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import PicklePayload, shrunk
from kit import RNG, authors_h5, make_cifar, make_mnist
from PIL import Image

from cgankd.base.errors import CgankdError
from cgankd.cli import main
from cgankd.data.prepared import load_prepared
from cgankd.stages import prepare


def make_folder(root: Path, n: int = 8) -> Path:
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(RNG.integers(0, 255, (20, 24, 3)).astype(np.uint8)).save(root / c / f"{i}.png")
    return root


def make_h5(path: Path, regression: bool = True, drop: str | None = None, n: int = 30) -> Path:
    with h5py.File(path, "w") as f:
        arrays = {"images_train": RNG.integers(0, 255, (n, 3, 16, 16)).astype(np.uint8),
                  "labels_train": (np.arange(n) % 6 * 10.0) if regression else np.arange(n) % 3,
                  "images_test": RNG.integers(0, 255, (10, 3, 16, 16)).astype(np.uint8),
                  "labels_test": np.linspace(0, 50, 10) if regression else np.arange(10) % 3}
        for k, v in arrays.items():
            if k != drop:
                f[k] = v
    return path


def make_csv(root: Path, labels: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label"])
        for i, y in enumerate(labels):
            Image.fromarray(RNG.integers(0, 255, (16, 16, 3)).astype(np.uint8)).save(root / f"{i}.png")
            w.writerow([f"{i}.png", y])
    return root


def prep(tmp_path: Path, *overrides: str):
    cfg = shrunk(tmp_path / "out", *overrides)
    prepare.run(cfg)
    return load_prepared(cfg.path("prepared"))


@pytest.mark.parametrize("folder, source, gz", [("MNIST", "mnist", True), ("FashionMNIST", "fashionmnist", False)])
def test_mnist_layout(tmp_path, folder, source, gz):
    root = make_mnist(tmp_path / "data", folder, gz=gz)
    d = prep(tmp_path, f"data.source={source}", f"data.root={root}", "data.n_per_class=3",
             "data.n_val_per_class=2")
    assert d["train"].images.shape == (30, 1, 32, 32) and len(d["val"]) == 20 and len(d["test"]) == 30
    assert d.meta.num_classes == 10 and d.meta.task == "classification"


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar(tmp_path, hundred):
    root = make_cifar(tmp_path / "data", hundred)
    d = prep(tmp_path, f"data.source={'cifar100' if hundred else 'cifar10'}", f"data.root={root}",
             "data.n_per_class=2", "data.n_val_per_class=1")
    assert d["train"].images.shape == (20, 3, 32, 32) and len(d["test"]) == 40


def test_a_cifar_batch_with_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    root = make_cifar(tmp_path / "data")
    marker = tmp_path / "pwned"
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    d = pickle.load(open(batch, "rb"))
    pickle.dump({**d, "batch_label": PicklePayload(marker)}, open(batch, "wb"))
    with pytest.raises(CgankdError, match=r"data_batch_3: refused: .*posix.mkdir is not data"):
        prep(tmp_path, "data.source=cifar10", f"data.root={root}", "data.n_per_class=2", "data.n_val_per_class=1")
    assert not marker.exists()


def test_imagefolder_resizes_and_holds_out(tmp_path):
    root = make_folder(tmp_path / "imgs")
    d = prep(tmp_path, "data.source=imagefolder", f"data.root={root}", "data.n_per_class=4",
             "data.n_val_per_class=1", "data.resolution=16")
    assert d.meta.classes == ["cat", "dog"] and d["train"].images.shape == (8, 3, 16, 16)


def test_h5_regression_reads_size_and_range_from_file(tmp_path):
    path = make_h5(tmp_path / "rc.h5")
    d = prep(tmp_path, "task=regression", "data.source=h5", f"data.root={path}", "data.n_per_class=null")
    assert d.meta.task == "regression" and d.meta.resolution == 16 and d.meta.label_range == [0.0, 50.0]
    assert len(d["train"]) + len(d["val"]) == 30


@pytest.mark.parametrize("layout, task, sets, want", [
    ("imagenet100", "classification", [], {"layout": "split-valid", "train": 80, "test": 40}),
    ("cell200", "regression", [], {"layout": "cell-pool", "train_labels": 15, "channels": 1}),
    ("cell200-test", "regression", ["data.n_per_class=null"], {"layout": "cell-split", "test": 30}),
    ("rc49", "regression", [], {"layout": "rc49-pool", "train_labels": 15}),
    ("rc49", "regression", ["data.rc.split=indx_train"], {"layout": "rc49-pool", "split": "indx_train", "test": 30}),
    ("utkface", "regression", [], {"layout": "pool", "test": 24}),
])
def test_the_authors_h5_layouts_prepare(tmp_path, layout, task, sets, want):
    path = authors_h5(tmp_path / f"{layout}.h5", layout)
    out = tmp_path / "out"
    args = ["prepare", "-S", f"out_dir={out}", "-S", f"task={task}", "-S", "data.source=h5", "-S", f"data.root={path}",
            "-S", "data.n_per_class=20", "-S", "data.n_val_per_class=2"]
    for s in sets:
        args += ["-S", s]
    assert main(args) == 0
    d = load_prepared(out / "prepared")
    prov = d.meta.provenance
    assert prov["layout"] == want["layout"] and d.meta.resolution == 16
    assert d.meta.channels == want.get("channels", d.meta.channels)
    assert all(d[s].images.dtype == np.uint8 for s in ("train", "val", "test"))
    if "train" in want:
        assert len(d["train"]) == want["train"]
    if "test" in want:
        assert len(d["test"]) == want["test"]
    if "train_labels" in want:  # every 2nd distinct label trains, the others only test
        assert prov["train_labels"] == want["train_labels"]
        assert len(np.unique(d["train"].labels)) == 15 and set(d["test"].labels) - set(d["train"].labels)
    if "split" in want:  # the authors' indx_train: every image but each 4th; the test split is the 4th ones
        assert prov["split"] == "indx_train" and set(np.unique(d["test"].labels)) == set(np.unique(d["train"].labels))


def test_csv_regression(tmp_path):
    root = make_csv(tmp_path / "c", [str(v) for v in np.linspace(0, 90, 20)])
    d = prep(tmp_path, "task=regression", "data.source=csv", f"data.root={root}", "data.n_per_class=null",
             "data.resolution=16")
    assert d["train"].labels.dtype == np.float32 and len(d["test"]) == 4


def test_digits_embedded(tmp_path):
    d = prep(tmp_path, "data.source=digits", "data.n_per_class=10", "data.n_val_per_class=5")
    assert d["train"].images.shape == (100, 1, 16, 16) and len(d["test"]) == 599


def test_prepared_objects_and_rc(tmp_path):
    d = prep(tmp_path)
    assert d["train"].images.shape == (120, 3, 16, 16) and len(d["test"]) == 200
    r = prep(tmp_path / "rc", "task=regression", "data.rc.angle_step=1.0", "data.rc.n_test_per_angle=1",
             "data.rc.n_val=10", "data.rc.n_per_angle=1")
    assert r.meta.label_range == [0.0, 90.0] and len(r["train"]) == 45 and len(r["test"]) == 90
    assert set(np.unique(r["train"].labels)) < set(np.unique(r["test"].labels))  # unseen test angles


BAD = [
    (["data.source=mnist", "data.root={tmp}/missing"], "no such file or folder"),
    (["data.source=mnist"], "needs data.root"),
    (["data.source=nosuch"], "unknown; choose one of"),
    (["data.source=imagefolder", "data.root={tmp}/empty"], "no class sub-folders"),
    (["data.source=imagefolder", "data.root={folder}", "data.n_per_class=50"],
     "class 0 has 7 images; the budget needs 70"),
    (["task=regression", "data.source=h5", "data.root={h5_missing}"], "missing keys labels_test"),
    (["task=regression", "data.source=h5", "data.root={h5_mismatch}"], "but labels_train has"),
    (["task=regression", "data.source=h5", "data.root={h5_nan}"], "NaN or infinite"),
    (["task=regression", "data.source=csv", "data.root={csv_nan}"], "NaN or infinite"),
    (["task=regression", "data.source=csv", "data.root={csv_up}"], "'../secret.png' is outside data.root"),
    (["task=regression", "data.source=csv", "data.root={csv_abs}"], "is outside data.root"),
    (["task=regression", "data.source=csv", "data.root={csv_link}"], "'link.png' is outside data.root"),
    (["task=regression", "data.source=h5", "data.root={h5_flat}"], "zero width"),
    (["data.source=mnist", "data.root={mnist_trunc}"], "truncated"),
    (["task=regression", "data.source=h5", "data.root={h5_sizes}"], "differ in size"),
    (["task=regression", "data.source=h5", "data.root={pool_mismatch}"], "images has 5 images but labels has 4"),
    (["task=regression", "data.source=h5", "data.root={pool_inf}"], "NaN or infinite"),
    (["data.source=h5", "data.root={pool_inf}"], "set task=regression"),
    (["task=regression", "data.source=h5", "data.root={odd_keys}"],
     "missing keys IMGs_grey of the cell-pool layout (has: CellCounts, weird"),
    (["task=regression", "data.source=h5", "data.root={pool_inf}", "data.rc.split=indx_train"], "NaN or infinite"),
    (["task=regression", "data.source=h5", "data.root={rc_no_indx}", "data.rc.split=indx_train"],
     "data.rc.split=indx_train, but the file has no indx_train (has: images, labels, types)"),
]


@pytest.mark.parametrize("overrides, message", BAD)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, overrides, message):
    (tmp_path / "empty").mkdir()
    folder = make_folder(tmp_path / "folder")
    make_h5(tmp_path / "missing.h5", drop="labels_test")
    with h5py.File(tmp_path / "mismatch.h5", "w") as f:
        f["images_train"] = np.zeros((5, 3, 8, 8), np.uint8)
        f["labels_train"] = np.zeros(4)
        f["images_test"] = np.zeros((2, 3, 8, 8), np.uint8)
        f["labels_test"] = np.zeros(2)
    with h5py.File(tmp_path / "nan.h5", "w") as f:
        f["images_train"] = np.zeros((3, 3, 8, 8), np.uint8)
        f["labels_train"] = np.array([1.0, np.nan, 2.0])
        f["images_test"] = np.zeros((2, 3, 8, 8), np.uint8)
        f["labels_test"] = np.zeros(2)
    with h5py.File(tmp_path / "flat.h5", "w") as f:
        f["images_train"] = np.zeros((3, 3, 16, 16), np.uint8)
        f["labels_train"] = np.full(3, 7.0)
        f["images_test"] = np.zeros((2, 3, 16, 16), np.uint8)
        f["labels_test"] = np.zeros(2)
    with h5py.File(tmp_path / "sizes.h5", "w") as f:
        f["images_train"] = np.zeros((3, 3, 16, 16), np.uint8)
        f["labels_train"] = np.arange(3.0)
        f["images_test"] = np.zeros((2, 3, 32, 32), np.uint8)
        f["labels_test"] = np.zeros(2)
    with h5py.File(tmp_path / "pool_mismatch.h5", "w") as f:  # RC-49 layout
        f["images"] = np.zeros((5, 3, 16, 16), np.uint8)
        f["labels"] = np.arange(4.0)
    with h5py.File(tmp_path / "pool_inf.h5", "w") as f:
        f["images"] = np.zeros((3, 3, 16, 16), np.uint8)
        f["labels"] = np.array([0.0, np.inf, 1.0])
    with h5py.File(tmp_path / "odd_keys.h5", "w") as f:
        f["CellCounts"] = np.arange(3.0)
        f["weird"] = np.zeros(3)
    with h5py.File(tmp_path / "rc_no_indx.h5", "w") as f:
        f["images"] = np.zeros((4, 3, 16, 16), np.uint8)
        f["labels"] = np.arange(4.0)
        f["types"] = np.zeros(4, np.int64)
    make_csv(tmp_path / "csvnan", ["1.0", "nan"])
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "secret.png")  # beside the root, not in it
    for name, row in (("csvup", "../secret.png"), ("csvabs", str(tmp_path / "secret.png")), ("csvlink", "link.png")):
        root = make_csv(tmp_path / name, ["1.0", "2.0"])
        (root / "link.png").symlink_to(tmp_path / "secret.png")
        with open(root / "labels.csv", "a", newline="") as f:
            csv.writer(f).writerow([row, "3.0"])
    mroot = make_mnist(tmp_path / "m", gz=False)
    p = mroot / "MNIST" / "raw" / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    subs = {"tmp": tmp_path, "folder": folder, "h5_missing": tmp_path / "missing.h5",
            "h5_mismatch": tmp_path / "mismatch.h5", "h5_nan": tmp_path / "nan.h5",
            "h5_flat": tmp_path / "flat.h5", "csv_nan": tmp_path / "csvnan", "mnist_trunc": mroot,
            "h5_sizes": tmp_path / "sizes.h5", "pool_mismatch": tmp_path / "pool_mismatch.h5",
            "pool_inf": tmp_path / "pool_inf.h5", "odd_keys": tmp_path / "odd_keys.h5",
            "rc_no_indx": tmp_path / "rc_no_indx.h5", "csv_up": tmp_path / "csvup", "csv_abs": tmp_path / "csvabs",
            "csv_link": tmp_path / "csvlink"}
    out = tmp_path / "out"
    args = ["prepare", "-S", f"out_dir={out}"]
    for o in overrides:
        args += ["-S", o.format(**subs)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
    assert not (out / "prepared").exists()  # nothing half-written


def test_prepare_replaces_output_atomically(tmp_path):
    cfg = shrunk(tmp_path / "out")
    prepare.run(cfg)
    first = (cfg.path("prepared") / "data.npz").read_bytes()
    with pytest.raises(CgankdError):
        prepare.run(shrunk(tmp_path / "out", "data.source=mnist"))
    assert (cfg.path("prepared") / "data.npz").read_bytes() == first  # old output intact
    assert [p.name for p in cfg.path().iterdir() if p.name.startswith(".")] == []  # no temp litter


@pytest.mark.parametrize("source", ["objects", "rc", "digits"])
def test_every_embedded_source_prepares_on_its_defaults(tmp_path, capsys, source):
    """What the README and `cgankd prepare -S data.source=...` offer runs without budget keys."""
    task = ["-S", "task=regression"] if source == "rc" else []  # without it: one line that says so
    assert main(["prepare", "-S", f"data.source={source}", "-S", f"out_dir={tmp_path}", *task]) == 0
    d = load_prepared(tmp_path / "prepared")
    assert len(d["train"]) > 0 and len(d["val"]) > 0 and len(d["test"]) > 0
    if source == "digits":  # its smallest class has fewer than 100 + 20 images: clamped, and said
        assert "data.n_per_class=" in capsys.readouterr().err
        counts = np.bincount(d["train"].labels)
        assert counts.min() == counts.max() < 100
