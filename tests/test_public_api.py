"""The public API: each module says what it exports, and each export is documented."""

import ast
import importlib
import inspect
import pathlib
import pkgutil
import re

import pytest

import keras_recipes

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The public modules of the validation/CLI/config layer and the recipes.
MODULES = [
    "keras_recipes",
    "keras_recipes.cli",
    "keras_recipes.run_record",
    "keras_recipes.config",
    "keras_recipes.datasets",
    "keras_recipes.callbacks",
    "keras_recipes.callbacks.stop_on_nan",
    "keras_recipes.callbacks.backup",
    "keras_recipes.models",
    "keras_recipes.models.registry",
    "keras_recipes.models.default_dnn",
    "keras_recipes.models.plain_dnn",
    "keras_recipes.models.self_normalizing",
]


@pytest.mark.parametrize("name", MODULES)
def test_every_export_exists_and_is_documented(name):
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list) and len(set(module.__all__)) == len(module.__all__)
    for export in module.__all__:
        value = getattr(module, export)  # AttributeError: exported but missing
        if inspect.isfunction(value) or inspect.isclass(value) or inspect.ismodule(value):
            assert (value.__doc__ or "").strip(), f"{name}.{export} has no docstring"


@pytest.mark.parametrize("name", MODULES)
def test_functions_and_classes_defined_here_are_exported_or_private(name):
    module = importlib.import_module(name)
    defined = [key for key, value in vars(module).items()
               if (inspect.isfunction(value) or inspect.isclass(value))
               and value.__module__ == name and not key.startswith("_")]
    assert sorted(set(defined) - set(module.__all__)) == []


# Every module of the package, private ones included: `__all__` says what each offers to
# the rest of the package, so that a public-looking helper is either exported or private.
ALL_MODULES = sorted(m.name for m in pkgutil.walk_packages(keras_recipes.__path__,
                                                            "keras_recipes."))


def _public_names_defined_in(module):
    """The public names a module's source defines at top level (functions, classes,
    assignments), read from its source so that imported names are left out."""
    tree = ast.parse(pathlib.Path(module.__file__).read_text())
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.extend(t.id for t in targets if isinstance(t, ast.Name))
    return [n for n in names if not n.startswith("_")]


def test_every_module_of_the_package_is_listed():
    assert len(ALL_MODULES) > 60 and set(MODULES) - {"keras_recipes"} <= set(ALL_MODULES)


@pytest.mark.parametrize("name", ALL_MODULES)
def test_every_module_has_an_all_of_existing_documented_names(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ repeats a name"
    for export in module.__all__:
        assert hasattr(module, export), f"{name}.__all__ names {export!r}, which it lacks"
        value = getattr(module, export)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert (value.__doc__ or "").strip(), f"{name}.{export} has no docstring"
    not_exported = sorted(set(_public_names_defined_in(module)) - set(module.__all__))
    assert not_exported == [], f"{name}: public names not in __all__ (export or rename)"


def _readme_names():
    """`(module, name)` for every `keras_recipes.X` and `from keras_recipes... import X`
    in README.md."""
    text = (ROOT / "README.md").read_text()
    found = set()
    for module, imported in re.findall(
            r"from (keras_recipes(?:\.\w+)*) import (\([^)]*\)|[\w, ]+)", text):
        names = imported.strip("()").replace("\n", ",").split(",")
        found.update((module, n.strip()) for n in names if n.strip())
    for path in re.findall(r"\bkeras_recipes((?:\.\w+)+)", text):
        parts = path.strip(".").split(".")
        # `keras_recipes.callbacks.TrainingMonitor`: the last part, from its package.
        found.add((".".join(["keras_recipes", *parts[:-1]]), parts[-1]))
    return sorted(found)


def test_readme_reads_the_names_it_shows():
    assert ("keras_recipes", "build_default_dnn") in _readme_names()


@pytest.mark.parametrize("module_name,name", _readme_names())
def test_every_name_the_readme_shows_is_exported(module_name, name):
    module = importlib.import_module(module_name)
    if inspect.ismodule(getattr(module, name, None)):
        return  # a subpackage (`keras_recipes.datasets`): its names are checked above
    assert name in module.__all__, f"README shows {module_name}.{name}, not in its __all__"


@pytest.mark.parametrize("name", ALL_MODULES)
def test_no_docstring_keeps_an_unfilled_shared_block(name):
    # A `{{block}}` marker left in a docstring means `_docstrings.fill_docstring` was not
    # applied to it (or was given another name): help() would show the marker.
    module = importlib.import_module(name)
    for export in module.__all__:
        value = getattr(module, export)
        if inspect.isfunction(value) or inspect.isclass(value):
            unfilled = re.findall(r"^\s*\{\{\w+\}\}\s*$", value.__doc__ or "", re.M)
            assert unfilled == [], f"{name}.{export}: unfilled docstring blocks"


def test_fill_docstring_indents_each_block_line_as_its_marker_and_refuses_unused_blocks():
    from keras_recipes._docstrings import fill_docstring

    def f():
        """Summary.

        Args:
            {{args}}
        """

    fill_docstring(args="a: first.\n    more on a.\nb: second.")(f)
    assert f.__doc__.split("\n")[3:6] == ["            a: first.", "                more on a.",
                                         "            b: second."]

    def g():
        """No marker here."""

    with pytest.raises(ValueError, match=r"g has no line \{\{args\}\}"):
        fill_docstring(args="a: first.")(g)
