"""No dangling link in README.md and docs/: every relative link names a file of the repository,
and every #anchor a heading of its target (GitHub's anchor rules); and no stale pointer: every
repository path that code, docs or params name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return out


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_and_anchor_resolves(page):
    bad = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):  # http(s):, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not bad, bad


def test_the_pipeline_page_draws_the_stage_table():
    from cgankd.pipeline.spec import pipeline_line

    assert f"\n{pipeline_line()}\n" in (ROOT / "docs" / "pipeline.md").read_text()


# a repository path as code, docs and params name it: cgankd/gan/step.py, docs/gpu.md, profiles/gpu.yaml ...
PATH = re.compile(r"(?<![\w/.-])((?:cgankd|tests|bench|docs|profiles|flows|\.ci)/[\w./-]*\w\."
                  r"(?:py|md|yaml|yml|sh|json|csv|png|txt))")
OUTPUTS = ("bench/work/",)  # written by a command, not kept in the repository
NAMED_IN = ["cgankd/**/*.py", "tests/*.py", "bench/*.py", "flows/*.py", "docs/*.md", "profiles/*.yaml",
            "README.md", "params.yaml", "Makefile", "pyproject.toml"]


def test_every_path_named_in_code_docs_and_params_exists():
    """A docstring, comment, doc or param that names a file of the repository names one that exists
    (a renamed module leaves no stale pointer behind); patterns (<name>, {x}, *) are skipped."""
    bad = []
    for pattern in NAMED_IN:
        for f in sorted(ROOT.glob(pattern)):
            for p in PATH.findall(f.read_text()):
                if not any(c in p for c in "<>{}*") and not p.startswith(OUTPUTS) and not (ROOT / p).exists():
                    bad.append(f"{f.relative_to(ROOT)}: {p}")
    assert not bad, "\n".join(bad)
