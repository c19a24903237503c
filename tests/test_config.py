import re

import pytest

import keras_recipes
from keras_recipes.config import ConfigError, load_config, packaged_config_path


@pytest.mark.parametrize("recipe", keras_recipes.list_recipes())
def test_every_recipe_ships_a_config_that_resolves(recipe):
    assert packaged_config_path(recipe).is_file()
    config = load_config(recipe)
    assert config.recipe == recipe and config.source == f"{recipe}.yaml"
    factory = keras_recipes.get_recipe(recipe)
    import inspect

    parameters = inspect.signature(factory).parameters
    assert set(config.model) <= set(parameters)
    assert config.fit["epochs"] >= 1 and config.dataset["name"]


def test_defaults_are_filled_in_and_overrides_parse_yaml_values():
    config = load_config("default_dnn", ["fit.epochs=3", "model.units=64",
                                         "model.activation=gelu", "seed=7",
                                         "model.early_stopping_patience=null"])
    assert config.fit == {"epochs": 3, "batch_size": 32}
    assert config.model["units"] == 64 and config.model["activation"] == "gelu"
    assert config.model["early_stopping_patience"] is None
    assert config.model["batch_norm"] is True  # a factory default, filled in
    assert config.seed == 7 and config.dataset["test_split"] == 0.2


def _write(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("recipe: default_dnn\nmodle: {units: 3}\n",
     "unknown key `modle`. Valid keys: recipe, seed, dataset, model, fit, report. "
     "Did you mean 'model'?"),
    ("recipe: default_dnn\nmodel: {unitz: 3}\n", "unknown key `model.unitz`."),
    ("recipe: default_dnn\nfit: {epochs: ten}\n",
     "fit.epochs: Argument `epochs` must be a positive integer. Received: epochs='ten'"),
    ("recipe: default_dnn\nfit: {epochs: 0}\n",
     "fit.epochs: Argument `epochs` must be a positive integer. Received: epochs=0"),
    ("recipe: defualt_dnn\n", "recipe: Argument `name` must be one of"),
    ("recipe: default_dnn\nmodel: [1, 2]\n", "`model` must be a mapping of keyword arguments"),
    ("recipe: default_dnn\nseed: -1\n", "seed: expected a non-negative integer, got -1"),
    ("recipe: default_dnn\nmodel: {units: 3\n", "invalid YAML (line 3, column 1)"),
    ("- just\n- a list\n", "expected a mapping of sections"),
])
def test_broken_configs_name_the_file_key_and_value(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file_and_unknown_source():
    with pytest.raises(ConfigError, match=re.escape("nope.yaml: no such config file")):
        load_config("nope.yaml")
    with pytest.raises(ConfigError, match=re.escape(
            "'default-dnn' is neither a recipe (baseline, default_dnn, self_normalizing)")):
        load_config("default-dnn")


@pytest.mark.parametrize("overrides, message", [
    (["model=3", "model.units=3"], "--set 'model.units=3': `model` is not a section"),
    (["model.units"], "--set 'model.units': expected section.key=value"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("default_dnn", overrides)


def test_configs_are_read_with_safe_load(tmp_path):
    path = _write(tmp_path, "recipe: !!python/object/apply:os.system ['echo unsafe']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)
