"""Which source files a pipeline job runs, read from the code itself (``ast``: nothing is imported, no torch).

Snakemake tracks no imported module, so every rule lists the ``src/`` files its job imports as inputs:
editing one re-runs exactly the jobs that import it. The files are found by walking the ``rnngeom``
imports of the job's entry module (top-level and function-level imports, the ``__init__.py`` of every
package on the way, and the ``__main__.py`` of an entry that is a package), with one refinement. A
*registry* imports all of its members, but a job runs only its own: the task registry
(``rnngeom.tasks.TASKS``), the architectures (``rnngeom.models.MODELS``), the learning rules (classes
decorated with ``@register`` in ``rnngeom/learning/``) and the architecture-only analysis code in
``ARCH_ONLY_ANALYSIS``. The walk does not follow a non-member's import of a member; it
adds the job's own member for its task, arch or learning_rule (and every member where the job has none,
e.g. aggregation). A member's own imports are followed (rank1 builds on leaky, freeze_in on rflo).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "rnngeom"
PACKAGE_DIR = Path(__file__).resolve().parent

# Imported by run_analysis for every run, but run only for one architecture (analysis.plrnn_method: exact).
ARCH_ONLY_ANALYSIS = {"plrnn": "rnngeom.analysis.plrnn_exact"}


def module_file(module: str) -> Path | None:
    """The file of an ``rnngeom`` module or package, None if ``module`` names no file (e.g. a function)."""
    path = PACKAGE_DIR.joinpath(*module.split(".")[1:])
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse(module_file(module).read_text(), filename=str(module_file(module)))


def _package_of(module: str) -> str:
    return module if module_file(module).name == "__init__.py" else module.rsplit(".", 1)[0]


def _imported_names(module: str, nodes) -> dict[str, str]:
    """{local name: the dotted name it refers to} for the import statements among ``nodes``."""
    names = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                names[local] = alias.name if alias.asname else local
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = _package_of(module).split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                names[alias.asname or alias.name] = f"{base}.{alias.name}"
    return names


def _with_parents(name: str) -> set[str]:
    """The modules that importing the dotted ``name`` runs: each package on the way and the module itself."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1) if module_file(".".join(parts[:i]))}


@cache
def imports(module: str) -> frozenset[str]:
    """The ``rnngeom`` modules that importing ``module`` (and calling its functions) imports directly."""
    found = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = list(_imported_names(module, [node]).values())
            targets.append(targets[0].rsplit(".", 1)[0])  # `from pkg.mod import x` imports pkg.mod
        else:
            continue
        for name in targets:
            if name.split(".")[0] == PACKAGE:
                found |= _with_parents(name)
    return frozenset(found - {module})


def _origin(module: str, local_name: str) -> str:
    """The module a top-level name of ``module`` was imported from (the module itself if it is one)."""
    dotted = _imported_names(module, _tree(module).body)[local_name]
    return dotted if module_file(dotted) else dotted.rsplit(".", 1)[0]


def _dict_literal(module: str, variable: str) -> dict:
    for node in _tree(module).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == variable and isinstance(node.value, ast.Dict):
            return dict(zip(node.value.keys, node.value.values))
    raise LookupError(f"{module} has no dict literal {variable}")


def _registry_of_dict(module: str, variable: str) -> dict[str, str]:
    """{name: member module} of a registry dict literal such as ``MODELS = {"plrnn": PLRNN, ...}``."""
    members = {}
    for key, value in _dict_literal(module, variable).items():
        while isinstance(value, ast.Attribute):  # flipflop.TASK -> flipflop
            value = value.value
        members[ast.literal_eval(key)] = _origin(module, value.id)
    return members


@cache
def rule_classes() -> dict[str, dict]:
    """{class name: {"name", "module", "bases", "settings_key", "registered"}} of the classes in
    rnngeom/learning/ that set a rule ``name`` (registered ones carry the ``@register`` decorator)."""
    classes = {}
    for path in sorted((PACKAGE_DIR / "learning").glob("*.py")):
        module = f"{PACKAGE}.learning.{path.stem}" if path.stem != "__init__" else f"{PACKAGE}.learning"
        for node in _tree(module).body:
            if not isinstance(node, ast.ClassDef):
                continue
            attrs = {
                stmt.targets[0].id: stmt.value
                for stmt in node.body
                if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
            }
            classes[node.name] = {
                "name": ast.literal_eval(attrs["name"]) if "name" in attrs else None,
                "module": module,
                "bases": [b.id for b in node.bases if isinstance(b, ast.Name)],
                "settings_key": ast.literal_eval(attrs["settings_key"]) if "settings_key" in attrs else None,
                "registered": any(getattr(d, "id", None) == "register" for d in node.decorator_list),
            }
    return classes


def rule_settings_block(rule: str) -> str:
    """The training.<block> of a learning rule's settings: its own settings_key, else the one of its nearest
    registered ancestor, else its name (as ``rnngeom.learning.register`` sets it)."""
    classes = rule_classes()
    cls = next(c for c in classes.values() if c["registered"] and c["name"] == rule)
    while True:
        if cls["settings_key"]:
            return cls["settings_key"]
        parents = [classes[b] for b in cls["bases"] if b in classes and classes[b]["registered"]]
        if not parents:
            return cls["name"]
        cls = parents[0]


@cache
def registries() -> tuple[tuple[str, dict[str, str]], ...]:
    """(job key, {name: member module}) of every registry whose members only the matching job runs."""
    rules = {c["name"]: c["module"] for c in rule_classes().values() if c["registered"]}
    return (
        ("task", _registry_of_dict(f"{PACKAGE}.tasks", "TASKS")),
        ("arch", _registry_of_dict(f"{PACKAGE}.models", "MODELS")),
        ("learning_rule", rules),
        ("arch", dict(ARCH_ONLY_ANALYSIS)),
    )


# Registries that load their members by name at run time (no import statement to follow).
REGISTRY_HOMES = {f"{PACKAGE}.learning": ("learning_rule", lambda: dict(registries())["learning_rule"])}


def registry_names(key: str) -> list[str]:
    """The names a registry knows, e.g. registry_names("task") -> ["delayed_addition", ...]."""
    return sorted(next(members for k, members in registries() if k == key))


@cache
def job_modules(entry: str, task=None, arch=None, learning_rule=None) -> frozenset[str]:
    """The ``rnngeom`` modules a job running ``python -m <entry>`` imports for this task, arch and rule."""
    choice = {"task": task, "arch": arch, "learning_rule": learning_rule}
    member_key = {m: key for key, members in registries() for m in members.values()}
    seen, todo = set(), sorted(_with_parents(entry))
    if module_file(entry).name == "__init__.py" and module_file(f"{entry}.__main__"):
        todo.append(f"{entry}.__main__")  # `python -m <package>` runs the package's __main__.py
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for dep in imports(module):
            if dep in member_key and module not in member_key:
                # a registry importing a member: follow it only if it is this job's (or the job has no choice)
                key = member_key[dep]
                if choice[key] is None or any(
                    members.get(choice[key]) == dep for k, members in registries() if k == key
                ):
                    todo.append(dep)
            else:
                todo.append(dep)
        if module in REGISTRY_HOMES:  # a registry that loads its members by name (the learning rules)
            key, members = REGISTRY_HOMES[module]
            todo += [m for n, m in members().items() if choice[key] in (None, n)]
    return frozenset(seen)


def job_source_files(entry: str, task=None, arch=None, learning_rule=None) -> list[str]:
    """The source files of ``job_modules``, sorted: a rule's ``input.src``."""
    return sorted(str(module_file(m)) for m in job_modules(entry, task, arch, learning_rule))


def module_constant(module: str, name: str):
    """A module-level literal constant (e.g. a tuple of names), read without importing the module."""
    for node in _tree(module).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id == name and node.value is not None:
            return ast.literal_eval(node.value)
    raise LookupError(f"{module} has no constant {name}")
