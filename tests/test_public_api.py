"""The public API: each public module says what it exports, and each export is documented."""

import importlib
import inspect

import pytest

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
