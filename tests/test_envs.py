"""The conda env files and the pip pins must agree (conda envs cannot be built here, so this is the check)."""

from __future__ import annotations

import re

import yaml
from conftest import ROOT


def pip_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line).groups()
            pins[name.lower()] = version
    return pins


def env_pins(path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    pins = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==?\s*([^\s]+)", item)
            if m:
                pins[m.group(1).lower()] = m.group(2)
    return pins


def test_every_requirement_is_pinned_exactly():
    pins = pip_pins()
    assert {"torch", "numpy", "pandas", "snakemake", "seaborn", "scipy", "pyyaml", "pytest"} <= set(pins)


def test_env_files_agree_with_pip_pins():
    pins = pip_pins()
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    for path in envs:
        for name, version in env_pins(path).items():
            if name == "python":
                assert version.startswith("3.11"), path
            else:
                assert pins.get(name) == version, (
                    f"{path.name}: {name}=={version} but requirements.txt pins {pins.get(name)}"
                )


def test_every_rule_uses_a_pinned_env_file():
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            target = (smk.parent / env).resolve()
            assert target.exists() and target.parent == (ROOT / "envs"), (smk, env)
            assert env_pins(target), target
