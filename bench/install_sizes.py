"""Disk size of each install (pyproject.toml's extras), from pip's own resolution.

For each set of extras, ``pip install --dry-run --ignore-installed --report`` lists every
distribution a fresh environment would get (pinned by constraints.txt); their installed sizes are
summed from this environment's files (``importlib.metadata``). A distribution not installed here
(``onnxruntime`` beside ``onnxruntime-gpu``) is measured from its wheel's unpacked size.

    python bench/install_sizes.py            # writes bench/results/install_sizes.{json,md}
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / ".venv" / "constraints-unhashed.txt"  # constraints.txt without its hashes (make setup): pip checks
# none beside a local directory
SETS = ["serve", "gpu", "train", "train,serve", "train,serve,track", "train,gpu,track,scale,data,dev"]


def closure(extras: str) -> list[dict]:
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q",
           "--disable-pip-version-check", "--report", "-", "-c", str(PINS), f"{ROOT}[{extras}]"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [i for i in json.loads(out)["install"] if i["metadata"]["name"] != "cgankd"]


def installed_mb(name: str) -> float | None:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    total = 0
    for f in dist.files or []:
        p = Path(dist.locate_file(f))
        if p.is_file():
            total += p.stat().st_size
    return total / 2**20


def wheel_mb(item: dict) -> float:
    """The unpacked size of a wheel pip would download (for what is not installed here)."""
    url = item["download_info"]["url"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp,
                        f"{item['metadata']['name']}=={item['metadata']['version']}"], check=True,
                       capture_output=True)
        whl = next(Path(tmp).glob("*.whl"), None)
        if whl is None:
            raise RuntimeError(f"no wheel for {url}")
        with zipfile.ZipFile(whl) as z:
            return sum(i.file_size for i in z.infolist()) / 2**20


def main() -> None:
    rows = []
    for extras in SETS:
        items = closure(extras)
        sizes = {}
        for item in items:
            name = item["metadata"]["name"]
            mb = installed_mb(name)
            sizes[name] = mb if mb is not None else wheel_mb(item)
        top = sorted(sizes.items(), key=lambda kv: -kv[1])[:4]
        rows.append({"extras": extras, "distributions": len(items), "mb": round(sum(sizes.values())),
                     "largest": [(n, round(v)) for n, v in top]})
        print(json.dumps(rows[-1]), flush=True)
    machine = f"{platform.machine()}, Python {platform.python_version()}, {platform.system()}"
    (ROOT / "bench" / "results" / "install_sizes.json").write_text(json.dumps({"machine": machine, "rows": rows},
                                                                               indent=1))
    lines = [f"# Install size per set of extras\n\n{machine}; pinned by constraints.txt; "
             "`python bench/install_sizes.py`. Sizes exclude the virtual environment's own pip.\n",
             "| extras | distributions | MB installed | largest (MB) |", "|---|---:|---:|---|"]
    for r in rows:
        big = ", ".join(f"{n} {v:,}" for n, v in r["largest"])
        lines.append(f"| `cgankd[{r['extras']}]` | {r['distributions']} | {r['mb']:,} | {big} |")
    (ROOT / "bench" / "results" / "install_sizes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
