"""The documentation works in a fresh clone: every relative link resolves to a file of the repository, and no
text points at material outside it (the notes the reconstruction started from are not part of the clone)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

# Markdown files whose links a reader follows.
DOC_FILES = sorted(
    {ROOT / "README.md", ROOT / "benchmarks" / "README.md"}
    | set((ROOT / "docs").glob("*.md"))
    | set((ROOT / "profiles").rglob("README.md"))
)
# Where a pointer outside the repository could hide (text files only): everything but the tests, whose
# planted examples name such pointers on purpose.
SCAN_ROOTS = [
    "README.md",
    "docs",
    "src",
    "config.yaml",
    "config",
    "workflow",
    "profiles",
    "benchmarks",
    "scripts",
    "envs",
    "Makefile",
    ".ci/run",
    "Snakefile",
    "pyproject.toml",
    "requirements.txt",
]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".smk", ".rst", ".txt", ".html", ".json", ".sh", ".toml"}
# Markdown [text](target) (an optional "title" after the target) and HTML <img src="target">.
MD_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMG_SRC = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
FENCE = re.compile(r"^\s*(```|~~~)")
OUTSIDE = re.compile(r"\.\./shared|NOTES\.md")


def prose(text: str) -> str:
    """The text without fenced code blocks (a shell example is not a link)."""
    kept, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            kept.append(line)
    return "\n".join(kept)


def relative_links(text: str) -> list[str]:
    """Link targets a reader of the clone would open: not web or mail addresses, not pure anchors."""
    targets = MD_LINK.findall(prose(text)) + IMG_SRC.findall(text)
    out = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:, ...
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path:
            out.append(path)
    return out


def scanned_files() -> list[Path]:
    files = []
    for name in SCAN_ROOTS:
        p = ROOT / name
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            files += [
                f
                for f in p.rglob("*")
                if f.is_file() and f.suffix in TEXT_SUFFIXES and "__pycache__" not in f.parts
            ]
    return sorted(files)


def test_link_parser_finds_what_a_reader_would_follow():
    text = (
        "See [the config](config.yaml) and [claims](docs/claims.md#c2-gr-precedes-the-drop), "
        '[web](https://example.org/x.md), [top](#layout), ![fig](docs/img/a.png "title").\n'
        '<img src="docs/img/b.png" width="600">\n'
        "```\n[not a link](inside/a/fence.md)\n```\n"
    )
    assert relative_links(text) == ["config.yaml", "docs/claims.md", "docs/img/a.png", "docs/img/b.png"]


def test_outside_pattern_catches_the_notes_and_nothing_of_ours():
    assert OUTSIDE.search("equations in ../shared/paper/x.md") and OUTSIDE.search("(claim C11 in NOTES.md)")
    assert not OUTSIDE.search("equations in docs/reconstruction.md; see docs/claims.md and shared.py")


def test_the_docs_exist():
    for name in [
        "README.md",
        "docs/reconstruction.md",
        "docs/claims.md",
        "profiles/slurm/README.md",
        "benchmarks/README.md",
    ]:
        assert (ROOT / name).is_file(), f"{name} is missing"


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(doc):
    broken = []
    for target in relative_links(doc.read_text(encoding="utf-8")):
        resolved = (doc.parent / target).resolve()
        inside = resolved == ROOT or ROOT in resolved.parents
        if not inside or not resolved.exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links that do not resolve inside the repository: {broken}"


@pytest.mark.parametrize("path", scanned_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pointer_outside_the_repository(path):
    hits = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "text pointing outside the repository (the clone has no such file):\n" + "\n".join(hits)
