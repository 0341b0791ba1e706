import subprocess
import sys

CORE = ["cgankd.data.sources", "cgankd.models", "cgankd.gan.train", "cgankd.train.loop", "cgankd.fakes.make",
        "cgankd.stages", "cgankd.pipeline.runner", "cgankd.cli", "cgankd.kd", "cgankd.sweeps.comparison",
        "cgankd.sweeps.ablation"]
EDGE = ["mlflow", "prefect", "dvc", "onnx", "onnxruntime", "h5py", "sklearn", "matplotlib"]  # tqdm: torch imports it


def test_core_imports_no_mlops_package():
    code = (f"import sys\nfor m in {CORE!r}: __import__(m)\n"
            f"print([m for m in {EDGE!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_figures_are_skipped_with_one_notice_without_matplotlib(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from pathlib import Path\nfrom cgankd.base import figures\n"
            f"d = Path({str(tmp_path)!r})\n"
            "a = figures.label_score_curve([1, 2], [3.0, 4.0], 'acc', d / 'a.png')\n"
            "b = figures.quality_bars({'raw': {'fid': 1.0}}, [('fid', 'FID')], d / 'b.png')\n"
            "print(a, b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None None" and out.stderr.count("matplotlib is not installed") == 1
    assert not list(tmp_path.iterdir())


def test_figures_have_axes_labels(tmp_path):
    from cgankd.base import figures

    path = figures.label_score_curve([200, 400], [30.0, 55.0], "teacher accuracy on fakes (%)", tmp_path / "c.png")
    assert path is not None and path.stat().st_size > 5000
