import subprocess
import sys

CORE = ["cgankd.data.sources", "cgankd.models", "cgankd.gan.train", "cgankd.train.loop", "cgankd.fakes.make",
        "cgankd.stages", "cgankd.pipeline", "cgankd.cli", "cgankd.kd", "cgankd.compare", "cgankd.ablation"]
EDGE = ["mlflow", "prefect", "dvc", "onnx", "onnxruntime", "h5py", "sklearn"]


def test_core_imports_no_mlops_package():
    code = (f"import sys\nfor m in {CORE!r}: __import__(m)\n"
            f"print([m for m in {EDGE!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
