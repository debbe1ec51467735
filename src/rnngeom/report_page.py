"""What the HTML report's front page shows beside its items: the regime scan's maps, inline.

``snakemake --report`` renders the front page (workflow/report/workflow.rst) with Jinja, which sees the
workflow's config, the report's categories and its files. The scan (``make scan``) is not part of ``all``, so
its maps are not among the files; the Snakefile puts an ``InlineImages`` of them into the config instead,
and the page inserts it as raw HTML. The images are read when the page is rendered (``str``), not at every
parse of the workflow. (Snakemake's own ``embeddedimage`` directive leaves the image's path in place of the
data in Snakemake 9.27, so the page would point at a file the report does not carry.)
"""

from __future__ import annotations

import base64
import html
from pathlib import Path


class InlineImages:
    """The PNG files in ``folder`` as HTML: one collapsible block per file (its name the title, the first one
    open), the image inline as a data URL, so the report stays one self-contained file."""

    def __init__(self, folder: str | Path, pattern: str = "*.png"):
        self.folder, self.pattern = Path(folder), pattern

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob(self.pattern)) if self.folder.is_dir() else []

    def __bool__(self) -> bool:
        return bool(self.paths())

    def __str__(self) -> str:
        blocks = []
        for k, path in enumerate(self.paths()):
            name = html.escape(path.stem)
            # in lines of 76 characters: docutils refuses lines over 10,000 characters, and a data URL's
            # base64 may hold whitespace
            data = base64.encodebytes(path.read_bytes()).decode("ascii")
            blocks.append(
                f"<details{' open' if k == 0 else ''}><summary>{name}</summary>"
                f'<img src="data:image/png;base64,{data}" alt="regime map {name}" style="width: 100%">'
                "</details>"
            )
        return "\n".join(blocks)

    def __repr__(self) -> str:  # what a printout of the config shows: not the images
        return f"InlineImages({str(self.folder / self.pattern)!r})"
