"""rnngeom.io.json_arg: a command-line argument as inline JSON or @file, with errors naming the argument."""

import pytest

from rnngeom.io import json_arg


def test_inline_and_file(tmp_path):
    assert json_arg('{"a": [1, 2.5]}', "--settings") == {"a": [1, 2.5]}
    assert json_arg('["r1", "r2"]', "--run-ids") == ["r1", "r2"]
    path = tmp_path / "ids.json"
    path.write_text('{"exp": ["r1"]}')
    assert json_arg(f"@{path}", "--experiments") == {"exp": ["r1"]}


def test_missing_file_names_argument_and_path(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ValueError, match=r"--run-ids: JSON file .*nope\.json.* not found"):
        json_arg(f"@{missing}", "--run-ids")


def test_bad_json_names_argument(tmp_path):
    with pytest.raises(ValueError, match=r"--settings: not valid JSON \(inline"):
        json_arg("{not json", "--settings")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    with pytest.raises(ValueError, match=r"--claims: not valid JSON \(file .*bad\.json"):
        json_arg(f"@{bad}", "--claims")
