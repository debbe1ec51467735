"""The manifest of a folder of checkpoints of a network trained elsewhere, read and checked without torch.

``snakemake analyse_external --config external=FOLDER`` reads FOLDER/manifest.yaml at every parse of the
workflow (workflow/rules/external.smk), so a bad manifest stops before any job runs, with one line naming
the file and the key. Example (every key: workflow/schemas/external.schema.yaml; docs/own-rnn.md)::

    name: gru_flipflop                        # results/external/gru_flipflop/ (default: the folder's name)
    model: {kind: gru, input_size: 3, hidden_size: 32, prefix: "gru."}
    checkpoints: ckpt/step_{iteration}.pt     # or a list of {iteration, file}
    curve: {file: curve.tsv, iteration: iteration, loss: loss, accuracy: accuracy}
    inputs: test.npz                          # trials the checkpoints run on: inputs [, targets, mask]
    task: flipflop                            # optional: resting input, chance loss, expected stable count
    input: zeros                              # the constant input of the fixed points (default: see schema)
    analysis: {n_starts: 128}                 # overrides of the analysis settings

Checked here: the schema (types, ranges, unknown keys), that every file exists, that each checkpoint file is
a whole torch.save archive (the zip members' CRCs: a truncated or damaged file fails), the curve's columns,
the shapes of the inputs or trajectories against the model's sizes, the constant input's length, and the
analysis and loss-drop overrides (against the config schema's analysis block and the detector's settings).
What needs torch (each state dict's keys and shapes against the model) is checked by
``rnngeom.external.check_manifest_models`` when the workflow plans the job, still before any job runs.
"""

from __future__ import annotations

import copy
import csv
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import numpy as np
import yaml

from rnngeom.config import ConfigError, validate_schema

WORKFLOW = Path(__file__).resolve().parents[2] / "workflow"
SCHEMA = WORKFLOW / "schemas/external.schema.yaml"
CONFIG_SCHEMA = WORKFLOW / "schemas/config.schema.yaml"
MANIFEST_NAMES = ("manifest.yaml", "manifest.yml")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ITERATION = "{iteration}"
# the pipeline sets these itself (the top-level device; threads_per_job): the manifest may set them too
OWN_ANALYSIS_KEYS = ("device", "num_threads")


class ManifestError(ValueError):
    """A problem with an external folder; the message names the file and the key."""


@dataclass(frozen=True)
class Manifest:
    folder: Path
    file: Path
    name: str
    model: dict
    checkpoints: tuple[tuple[int, Path], ...]  # (iteration, file), by iteration
    curve: dict  # file (Path) and the column names: iteration, loss, test_loss, accuracy
    inputs: Path | None
    trajectories: Path | None
    input: str | list | None
    task: str | None
    chance_loss: float | None
    accuracy_threshold: float
    analysis: dict = field(default_factory=dict)
    loss_drop: dict = field(default_factory=dict)

    @property
    def n_in(self) -> int:
        return int(
            self.model["spec"]["n_in"] if self.model["kind"] == "rnngeom" else self.model["input_size"]
        )

    @property
    def files(self) -> list[str]:
        """Every file the analysis reads (the rule's inputs)."""
        extra = [p for p in (self.inputs, self.trajectories) if p is not None]
        return [str(p) for p in [self.file, self.curve["file"], *extra, *(f for _, f in self.checkpoints)]]


def find_manifest(path: str | Path) -> Path:
    """The manifest file of ``path``: the file itself, or manifest.yaml (.yml) in the folder."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ManifestError(f"external: {path} is neither a folder nor a manifest file")
    for name in MANIFEST_NAMES:
        if (path / name).is_file():
            return path / name
    raise ManifestError(f"external: no {MANIFEST_NAMES[0]} in {path}")


def _fail(file: Path, key: str, problem: str):
    raise ManifestError(f"{file}: manifest error at '{key}': {problem}")


def _existing(file: Path, folder: Path, key: str, value: str) -> Path:
    path = (folder / value).resolve()
    if not path.is_file():
        _fail(file, key, f"file {value!r} does not exist (in {folder})")
    return path


def checkpoint_file_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole torch.save file, or None. The zip format (PyTorch >= 1.6) is checked
    member by member (CRCs); an older pickle-format file is only checked to start like one."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            return None if bad is None else f"its member {bad} fails its CRC check (damaged)"
        with open(path, "rb") as f:
            head = f.read(2)
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
        return f"it is unreadable or truncated ({err})"
    if head == b"PK":
        return "it is a truncated or damaged zip archive (torch.save's format)"
    return None if head[:1] == b"\x80" else "it is not a torch.save file"


def _checkpoints(raw, file: Path, folder: Path) -> tuple[tuple[int, Path], ...]:
    if isinstance(raw, str):
        glob = raw.replace(ITERATION, "*")
        regex = re.compile(re.escape(raw).replace(re.escape(ITERATION), r"(\d+)") + "$")
        found = {}
        for path in sorted(folder.glob(glob)):
            m = regex.search(path.relative_to(folder).as_posix())
            if not m:
                continue
            it = int(m.group(1))
            if it in found:
                _fail(file, "checkpoints", f"iteration {it} matches two files: {found[it].name}, {path.name}")
            found[it] = path.resolve()
        if not found:
            _fail(file, "checkpoints", f"no file in {folder} matches {raw!r}")
        entries = sorted(found.items())
    else:
        entries = []
        for k, item in enumerate(raw):
            entries.append(
                (int(item["iteration"]), _existing(file, folder, f"checkpoints.{k}.file", item["file"]))
            )
        its = [it for it, _ in entries]
        duplicate = next((it for it in its if its.count(it) > 1), None)
        if duplicate is not None:
            _fail(file, "checkpoints", f"iteration {duplicate} is listed twice")
        entries.sort()
    for it, path in entries:
        problem = checkpoint_file_problem(path)
        if problem:
            raise ManifestError(f"{file}: checkpoint {path} (iteration {it}) is corrupt: {problem}")
    return tuple(entries)


def curve_separator(path: Path) -> str:
    return "," if path.suffix.lower() == ".csv" else "\t"


def _curve(raw: dict, file: Path, folder: Path) -> dict:
    path = _existing(file, folder, "curve.file", raw["file"])
    try:
        with open(path, newline="") as f:
            header = next(csv.reader(f, delimiter=curve_separator(path)), [])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        _fail(file, "curve.file", f"cannot read {path}: {err}")
    for key in ("iteration", "loss", "test_loss", "accuracy"):
        column = raw.get(key)
        if column is not None and column not in header:
            _fail(file, f"curve.{key}", f"column {column!r} is not in {path.name} (columns: {header})")
    return {**raw, "file": path}


def _arrays(path: Path, file: Path, key: str) -> dict[str, np.ndarray]:
    """The arrays of an .npy ({"array": ...}) or .npz file ({name: ...})."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"array": loaded}
        with loaded as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        _fail(file, key, f"cannot read {path.name} as .npy or .npz: {err}")


def state_size(model: dict) -> int | None:
    """The flat state size of a manifest's model (None for kind rnngeom: known once it is built)."""
    if model["kind"] == "rnngeom":
        return None
    n = int(model["hidden_size"])
    return 2 * n if model["kind"] in ("lstm", "lstm_cell") else n


def _check_analysis(overrides: dict, file: Path) -> None:
    """The analysis overrides against the config schema's analysis block (one home for their types and
    ranges), without filling defaults."""
    schema = yaml.safe_load(CONFIG_SCHEMA.read_text())
    block = copy.deepcopy(schema["properties"]["analysis"])
    for key in OWN_ANALYSIS_KEYS:
        overrides = {k: v for k, v in overrides.items() if k != key}
    validator = jsonschema.Draft202012Validator({**block, "$defs": schema.get("$defs", {})})
    errors = sorted(validator.iter_errors(overrides), key=lambda e: list(e.absolute_path))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        _fail(file, ".".join(["analysis", *map(str, err.absolute_path)]), err.message)


def read_manifest(path: str | Path) -> Manifest:
    """Read and check an external folder's manifest (see the module docstring); ManifestError names the file
    and the key of the first problem."""
    file = find_manifest(path).resolve()
    folder = file.parent
    try:
        raw = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ManifestError(f"{file}: not a readable YAML file: {err}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise ManifestError(
            f"{file}: the manifest must be a mapping of keys (model, checkpoints, curve, ...)"
        )
    try:
        m = validate_schema(raw, SCHEMA)
    except ConfigError as err:
        raise ManifestError(f"{file}: {str(err).replace('config error', 'manifest error', 1)}") from None
    name = m.get("name", folder.name)
    if not NAME_PATTERN.match(name):
        _fail(file, "name", f"the folder's name {name!r} cannot name results/external/<name>/: set name")
    model = m["model"]
    if model["kind"] == "rnngeom":
        for key in ("n_in", "n_hidden", "arch"):
            if key not in model["spec"]:
                _fail(file, "model.spec", f"the spec needs {key!r} (rnngeom.models.build_model)")
    elif model.get("spec"):
        _fail(file, "model.spec", f"spec is for kind rnngeom only, not {model['kind']!r}")
    if model.get("nonlinearity", "tanh") != "tanh" and model["kind"] not in ("rnn", "rnn_cell"):
        _fail(file, "model.nonlinearity", "only kinds rnn and rnn_cell have a nonlinearity")
    n_in = int(model["spec"]["n_in"] if model["kind"] == "rnngeom" else model["input_size"])

    checkpoints = _checkpoints(m["checkpoints"], file, folder)
    curve = _curve(m["curve"], file, folder)
    if ("inputs" in m) == ("trajectories" in m):
        _fail(file, "inputs", "give inputs (trials the checkpoints run on) or trajectories, one of them")
    task = m.get("task")
    setting = m.get("input", "task" if task else "zeros")
    inputs = trajectories = None
    if "inputs" in m:
        inputs = _existing(file, folder, "inputs", m["inputs"])
        arrays = _arrays(inputs, file, "inputs")
        x = arrays.get("inputs", arrays.get("array"))
        if x is None:
            _fail(file, "inputs", f"{inputs.name} has no array 'inputs' (it has {sorted(arrays)})")
        if x.ndim != 3 or x.shape[-1] != n_in:
            _fail(
                file, "inputs", f"inputs must be [trials, T, {n_in}] (the model's input size), got {x.shape}"
            )
        if setting == "task" and not {"targets", "mask"} <= set(arrays):
            _fail(file, "input", "input task needs inputs as an .npz with inputs, targets and mask")
    else:
        trajectories = _existing(file, folder, "trajectories", m["trajectories"])
        x = _arrays(trajectories, file, "trajectories").get("array")
        size = state_size(model)
        if x is None or x.ndim != 3 or (size is not None and x.shape[-1] != size):
            shape = None if x is None else x.shape
            _fail(file, "trajectories", f"trajectories must be an .npy [trials, T, {size}], got {shape}")
        if setting == "task":
            _fail(
                file,
                "input",
                "input task needs inputs (an .npz with inputs, targets, mask), not trajectories",
            )
    if setting == "task" and not task:
        _fail(file, "input", "input task needs the manifest's task")
    if isinstance(setting, list) and len(setting) != n_in:
        _fail(
            file, "input", f"the constant input needs {n_in} numbers (the model's input size), got {setting}"
        )
    _check_analysis(m["analysis"], file)
    from rnngeom.analysis.loss_drop import resolve_settings as loss_drop_settings  # numpy/scipy only

    try:
        loss_drop_settings(m["loss_drop"])
    except ValueError as err:
        _fail(file, "loss_drop", str(err))
    return Manifest(
        folder=folder,
        file=file,
        name=name,
        model=model,
        checkpoints=checkpoints,
        curve=curve,
        inputs=inputs,
        trajectories=trajectories,
        input=setting,
        task=task,
        chance_loss=m.get("chance_loss"),
        accuracy_threshold=float(m["accuracy_threshold"]),
        analysis=m["analysis"],
        loss_drop=m["loss_drop"],
    )
