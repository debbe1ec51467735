"""The report's front page: the regime scan's maps as inline images (rnngeom.report_page)."""

from __future__ import annotations

import base64

from PIL import Image

from rnngeom.report_page import InlineImages


def test_scan_maps_become_collapsible_inline_images(tmp_path):
    assert not InlineImages(tmp_path / "missing") and str(InlineImages(tmp_path / "missing")) == ""
    for name, color in (("gain_lambda", "red"), ("alpha", "blue")):
        Image.new("RGB", (40, 30), color).save(tmp_path / f"{name}.png")
    (tmp_path / "alpha.pdf").write_bytes(b"%PDF")  # not a PNG: not shown
    maps = InlineImages(tmp_path)
    html = str(maps)
    assert maps and html.count("<details") == 2 and html.startswith("<details open><summary>alpha</summary>")
    assert "<details><summary>gain_lambda</summary>" in html
    # every line short (docutils refuses lines over 10,000 characters); the data decodes to the file
    assert max(len(line) for line in html.splitlines()) < 200
    first = html.split("base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode("".join(first.split())) == (tmp_path / "alpha.png").read_bytes()
    assert repr(maps).startswith("InlineImages(")
