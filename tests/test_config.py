import inspect
import re

import pytest

import keras_recipes
from keras_recipes.config import ConfigError, load_config, packaged_config_path
from keras_recipes.models.transfer import build_transfer_model, fine_tune


@pytest.mark.parametrize("recipe", keras_recipes.list_recipes())
def test_every_recipe_ships_a_config_that_resolves(recipe):
    assert packaged_config_path(recipe).is_file()
    config = load_config(recipe)
    assert config.recipe == recipe and config.source == f"{recipe}.yaml"
    spec = keras_recipes.get_recipe_spec(recipe)
    parameters = set()
    for function in (spec.build, *spec.build_arguments):  # what the factory passes on
        parameters |= set(inspect.signature(function).parameters)
    assert set(config.model) <= parameters
    assert config.fit["epochs"] >= 1 and config.dataset["name"]


def test_defaults_are_filled_in_and_overrides_parse_yaml_values():
    config = load_config("default_dnn", ["fit.epochs=3", "model.units=64",
                                         "model.activation=gelu", "seed=7",
                                         "model.early_stopping_patience=null"])
    assert config.fit == {"epochs": 3, "batch_size": 32}
    assert config.model["units"] == 64 and config.model["activation"] == "gelu"
    assert config.model["early_stopping_patience"] is None
    assert config.model["normalization"] == "batch"  # a factory default, filled in
    assert config.seed == 7 and config.dataset["test_split"] == 0.2


def _write(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("recipe: default_dnn\nmodle: {units: 3}\n",
     "unknown key `modle`. Valid keys: recipe, seed, backend, dataset, model, fit, "
     "report. Did you mean 'model'?"),
    ("recipe: default_dnn\nbackend: jaxx\n", "backend: Argument `backend` must be one of "
     "'auto', 'tensorflow', 'jax', 'torch'. Received: backend='jaxx'. Did you mean 'jax'?"),
    ("recipe: default_dnn\nmodel: {unitz: 3}\n", "unknown key `model.unitz`."),
    ("recipe: default_dnn\nfit: {epochs: ten}\n",
     "fit.epochs: Argument `epochs` must be a positive integer. Received: epochs='ten'"),
    ("recipe: default_dnn\nfit: {epochs: 0}\n",
     "fit.epochs: Argument `epochs` must be a positive integer. Received: epochs=0"),
    ("recipe: defualt_dnn\n", "recipe: Argument `name` must be one of"),
    ("recipe: default_dnn\nmodel: [1, 2]\n", "`model` must be a mapping of keyword arguments"),
    ("recipe: default_dnn\nseed: -1\n",
     "seed: Argument `seed` must be a non-negative integer. Received: seed=-1"),
    ("recipe: default_dnn\nseed: 1.5\n",
     "seed: Argument `seed` must be a non-negative integer. Received: seed=1.5"),
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
            "'default-dnn' is neither a recipe (baseline, default_dnn, self_normalizing, "
            "transfer_learning)")):
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


def test_transfer_learning_config_takes_the_arguments_of_its_factory_and_fine_tune():
    config = load_config("transfer_learning")
    # The model section: every keyword of build_transfer_model (read from its signature,
    # so arguments added there are configurable at once), with the shipped values; its
    # training options make the recipe (a `recipe` object itself is no YAML value).
    built = set(inspect.signature(build_transfer_model).parameters)
    assert set(config.model) == built - {"input_shape", "num_classes", "seed", "recipe"}
    assert config.model["base"] == "MobileNetV2" and config.model["weights"] == "imagenet"
    # The fit section: fine_tune's phases, not model.fit's.
    assert config.fit == {"head_epochs": 5, "epochs": 10, "batch_size": 32, "unfreeze": 0.3,
                          "fine_tune_learning_rate": None, "discriminative_factor": None,
                          "discriminative_groups": 3}
    assert set(config.fit) <= set(inspect.signature(fine_tune).parameters)
    assert config.dataset["name"] == "tf_flowers" and config.dataset["standardize"] is False
    assert config.dataset["image_size"] == [160, 160]
    overridden = load_config("transfer_learning", ["fit.unfreeze=block_16_expand",
                                                   "model.base_kwargs={alpha: 0.35}",
                                                   "model.weights=null"])
    assert overridden.fit["unfreeze"] == "block_16_expand"
    assert overridden.model["base_kwargs"] == {"alpha": 0.35}
    assert overridden.model["weights"] is None


@pytest.mark.parametrize("text, message", [
    ("recipe: transfer_learning\nfit: {head_epoch: 2}\n",
     "unknown key `fit.head_epoch`. Valid keys: head_epochs, epochs, batch_size, unfreeze, "
     "fine_tune_learning_rate, discriminative_factor, discriminative_groups. "
     "Did you mean 'head_epochs'?"),
    ("recipe: transfer_learning\nfit: {learning_rate: 0.001}\n",
     "unknown key `fit.learning_rate`. Valid keys: head_epochs, epochs, batch_size, unfreeze, "
     "fine_tune_learning_rate, discriminative_factor, discriminative_groups. "
     "Did you mean 'fine_tune_learning_rate'?"),
    ("recipe: transfer_learning\nmodel: {bse: ResNet50}\n",
     "unknown key `model.bse`. Valid keys: base, weights, task, num_outputs, label_smoothing, "
     "base_kwargs, feature_layer, ... Did you mean 'base'?"),
    ("recipe: transfer_learning\nfit: {head_epochs: -1}\n",
     "fit.head_epochs: Argument `head_epochs` must be a non-negative integer. "
     "Received: head_epochs=-1"),
    ("recipe: transfer_learning\nfit: {unfreeze: yes}\n",
     "fit.unfreeze: Argument `unfreeze` must be an int (layers), a float in (0, 1] (fraction "
     "of layers), a layer name or \"all\". Received: unfreeze=True"),
    ("recipe: transfer_learning\nfit: {unfreeze: 1.5}\n",
     "fit.unfreeze: Argument `unfreeze` must be in the range (0, 1]. Received: unfreeze=1.5"),
    ("recipe: transfer_learning\nfit: {fine_tune_learning_rate: -0.001}\n",
     "fit.fine_tune_learning_rate: Argument `fine_tune_learning_rate` must be a number > 0 or "
     "None. Received: fine_tune_learning_rate=-0.001"),
    ("recipe: transfer_learning\nfit: {head_epochs: 0, epochs: 0}\n",
     "fit.epochs: Argument `epochs` must be positive when head_epochs=0. Received: epochs=0 "
     "(nothing to train)"),
    # model.fit's keys are not fine_tune's, and the other way round.
    ("recipe: default_dnn\nfit: {head_epochs: 2}\n",
     "unknown key `fit.head_epochs`. Valid keys: epochs, batch_size. Did you mean 'epochs'?"),
])
def test_transfer_learning_fit_section_is_validated(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    start, _, end = f"{path}: {message}".partition(" ... ")  # " ... ": the list goes on
    assert str(info.value).startswith(start) and str(info.value).endswith(end)
    if not end:
        assert str(info.value) == start
