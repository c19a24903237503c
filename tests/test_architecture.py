"""ARCHITECTURE.md, the newcomer's map of the package, names every module it holds."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "keras_recipes"


def _modules_to_name():
    """The package's .py files, relative to it; an `__init__.py` only when it defines
    something of its own (the others just gather their package's names)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py":
            tree = ast.parse(path.read_text())
            if not any(isinstance(node, (ast.FunctionDef, ast.ClassDef)) for node in tree.body):
                continue
        out.append(path.relative_to(PACKAGE).as_posix())
    return out


def _row_folder(line):
    """The folder a line of the map is about: that of the first path in backticks
    (`models/transfer/` -> "models/transfer", `models/default_dnn.py` -> "models")."""
    match = re.search(r"`([\w/]+?)/?(?:\w+\.py)?`", line)
    return match.group(1).rstrip("/") if match and "/" in match.group(0) else ""


def _named(module, lines):
    """Whether a line of the map names `module`: its path in full, or its file name on a
    line about its folder (`models/transfer/` | `build.py`, ...)."""
    folder, _, name = module.rpartition("/")
    for line in lines:
        if f"`{module}`" in line:
            return True
        if folder and _row_folder(line) == folder and f"`{name}`" in line:
            return True
    return False


def test_architecture_names_every_module():
    lines = (ROOT / "ARCHITECTURE.md").read_text().splitlines()
    modules = _modules_to_name()
    assert "_graph_walk.py" in modules and "models/transfer/build.py" in modules
    missing = [module for module in modules if not _named(module, lines)]
    assert missing == [], f"ARCHITECTURE.md does not say what these hold: {missing}"
