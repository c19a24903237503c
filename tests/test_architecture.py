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


def _keras_private_attributes():
    """The private attributes and methods of Keras's own objects (`self._name = ...` and
    `def _name` in its source), less those keras_recipes gives its own."""
    import keras

    assigned = re.compile(r"\bself\.(_[a-z]\w*)\s*=|^\s*def (_[a-z]\w*)", re.M)
    keras_names, our_names = set(), set()
    for path in pathlib.Path(keras.__file__).parent.rglob("*.py"):
        keras_names.update(filter(None, sum(assigned.findall(path.read_text(
            errors="replace")), ())))
    for path in PACKAGE.rglob("*.py"):
        our_names.update(filter(None, sum(assigned.findall(path.read_text()), ())))
    return keras_names - our_names


def test_tests_read_few_keras_privates_outside_the_internals_test():
    """Every Keras release may rename a private attribute; tests that read one break for
    reasons that are not theirs. They use public API or `keras_recipes._keras_internals`
    (tested against the nightly), and the few reads left are counted here."""
    privates = _keras_private_attributes()
    assert {"_learning_rate", "_flatten_layers", "_inbound_nodes"} <= privates
    reads = re.compile(r"[\w\)\]]\.(_[a-z]\w*)\b")
    found = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        if path.name in ("test_keras_internals.py", "test_architecture.py"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#")[0]
            found += [f"{path.name}:{number}: {name}" for name in reads.findall(code)
                      if name in privates]
    assert len(found) <= 15, found
