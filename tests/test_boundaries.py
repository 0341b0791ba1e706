import ast
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# the core, and the edge modules a GPU box imports to run it (`python -m cgankd run`, sweeps): none may
# import an MLOps package when imported (they do it lazily, where tracking is on)
NO_MLOPS = ["cgankd.data.sources", "cgankd.models", "cgankd.gan.train", "cgankd.train.loop", "cgankd.fakes.make",
            "cgankd.stages.make_fakes", "cgankd.pipeline.runner", "cgankd.cli", "cgankd.kd", "cgankd.sweeps.comparison",
            "cgankd.sweeps.ablation"]
EDGE = ["mlflow", "prefect", "dvc", "onnx", "onnxruntime", "h5py", "sklearn", "matplotlib"]  # tqdm: torch imports it

# The wings (docs/development.md) and what each may import besides itself; "cgankd" is the package's
# __init__ (its version). Arrows point down: cli -> sweeps -> pipeline -> stages -> core + store ->
# config, task, compute, base; ops and serve are called from above, never by the core.
CORE_PACKAGES = {"data", "models", "gan", "kd", "train", "features", "subsample", "fakes", "quality"}
LOW = {"base", "compute", "config", "task", "cgankd"}
ALLOWED = {
    "base": {"cgankd"},
    "task": set(),
    "compute": {"base"},
    "config": {"base", "compute", "task", "core"},
    "core": {"store", *LOW},
    "store": {"core", *LOW},
    "stages": {"core", "store", "ops", "serve", *LOW},
    "pipeline": {"core", "store", "ops", *LOW},  # the stages are imported by name from the stage table
    "sweeps": {"pipeline", "core", "store", "ops", *LOW},
    "ops": {"core", *LOW},
    "serve": {"ops", *LOW},
    "cli": {"sweeps", "pipeline", "stages", "core", "store", "ops", "serve", *LOW},
    "cgankd": {"cli"},
}
LAZY_ONLY = {("config", "core"), ("store", "core")}  # registry names to check; the networks a model file holds


def _modules() -> dict[str, Path]:
    out = {}
    for p in (ROOT / "cgankd").rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _wing(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return "cgankd"
    return "core" if parts[1] in CORE_PACKAGES else parts[1]


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, bool, int]]:
    """(imported cgankd module, at module level, line) for every import in the file, those inside
    functions too; ``if TYPE_CHECKING:`` blocks excluded."""
    out: list[tuple[str, bool, int]] = []

    def visit(nodes: list[ast.stmt], top: bool) -> None:
        for n in nodes:
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                continue
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("cgankd"):
                out.append((n.module, top, n.lineno))
                out.extend((f"{n.module}.{a.name}", top, n.lineno) for a in n.names
                           if f"{n.module}.{a.name}" in modules)
            elif isinstance(n, ast.Import):
                out.extend((a.name, top, n.lineno) for a in n.names if a.name.startswith("cgankd"))
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(n.body, False)
            else:
                for name in ("body", "orelse", "handlers", "finalbody"):
                    if isinstance(getattr(n, name, None), list):
                        visit(getattr(n, name), top)

    visit(ast.parse(path.read_text()).body, True)
    return out


def test_the_core_and_the_runner_import_no_mlops_package():
    code = (f"import sys\nfor m in {NO_MLOPS!r}: __import__(m)\n"
            f"print([m for m in {EDGE!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_imports_between_wings_point_down():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        for target, top, line in _imports(path, modules):
            a, b = _wing(name), _wing(target)
            if a != b and (b not in ALLOWED[a] or (top and (a, b) in LAZY_ONLY)):
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({a}) imports {target} ({b})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    """Between modules, counting the imports inside functions (a circle closed at call time is a circle
    still: the two modules cannot be read, tested or moved apart) and a module's parent packages."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for target, _, _ in _imports(path, modules):
            parts = target.split(".")
            deps |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
        graph[name] = {d for d in deps if d in modules and d != name and not name.startswith(d + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    assert not circles, circles


def test_the_house_stays_navigable():
    """The top level holds the CLI, the task and folders; no module grows past 300 lines; the task is
    asked, not compared by name (two comparisons remain: a served model swapped for one of another
    task, a data source that belongs to the other task)."""
    top = sorted(p.name for p in (ROOT / "cgankd").glob("*.py"))
    assert len(top) <= 4, top
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "cgankd").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 300}
    assert not long, long
    compared = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "cgankd").rglob("*.py")
                for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"task [!=]=", line)]
    assert len(compared) <= 5, compared


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


def test_stages_name_their_files_only_through_the_layout():
    """Every file a stage writes has one home, a key of cgankd/config/layout.py: a file name written in a
    stage would split the stage from dvc.yaml (rendered from the keys) when the key's path changes."""
    name = re.compile(r"""["'][\w*][\w/*{}.-]*\.(json|csv|png|pt|onnx|npz|npy|md|txt|h5|yaml)["']""")
    found = [f"{p.relative_to(ROOT)}:{i}: {m.group(0)}" for p in sorted((ROOT / "cgankd" / "stages").glob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if (m := name.search(line))]
    assert not found, "\n".join(found)
    planted = 'write_json(out / "parity.json", report)'  # what the test catches
    assert name.search(planted)
