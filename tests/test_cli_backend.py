"""The command line's choice of Keras backend per recipe (`keras_recipes._backend_choice`)."""

import argparse
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

import keras_recipes
from keras_recipes import _backend_choice as _backend
from keras_recipes._backend_choice import choose_backend

ALL = ("tensorflow", "jax", "torch")
HINT = "set KERAS_BACKEND or the config's backend to choose"


def test_every_registered_recipe_is_decided_on_purpose():
    decided = set(_backend.DENSE_RECIPES) | set(_backend._OTHER_RECIPES)
    assert decided == set(keras_recipes.list_recipes())


@pytest.mark.parametrize("recipe, installed, expected", [
    ("default_dnn", ALL, "jax"),
    ("baseline", ALL, "jax"),
    ("self_normalizing", ("tensorflow", "jax"), "jax"),
    ("default_dnn", ("tensorflow",), "tensorflow"),
    ("transfer_learning", ALL, "tensorflow"),
    ("transfer_learning", ("jax", "torch"), "jax"),
    ("a_new_recipe", ALL, "tensorflow"),
    ("default_dnn", ("torch",), "torch"),
])
def test_auto_takes_the_fastest_installed_backend_for_the_recipe(recipe, installed, expected):
    backend, why = choose_backend(recipe, environ={}, installed=installed)
    assert backend == expected and why.startswith("auto: ") and why.endswith(HINT)


def test_auto_says_why():
    assert choose_backend("default_dnn", environ={}, installed=ALL)[1] == \
        f"auto: fastest for dense recipes on CPU; {HINT}"
    assert "JAX, fastest for dense recipes, is not installed: pip install jax" in \
        choose_backend("default_dnn", environ={}, installed=("tensorflow",))[1]
    assert choose_backend("transfer_learning", environ={}, installed=ALL)[1] == \
        f"auto: TensorFlow's kernels, fastest for convolutional models; {HINT}"


def test_nothing_installed_leaves_keras_its_default():
    assert choose_backend("default_dnn", environ={}, installed=()) == (None, "Keras's default")


def test_keras_backend_in_the_environment_always_wins():
    environ = {"KERAS_BACKEND": "torch"}
    for setting in ("auto", "jax", "tensorflow"):
        assert choose_backend("default_dnn", setting, environ=environ, installed=("jax",),
                              configured="jax") == ("torch", "KERAS_BACKEND")


def test_the_config_setting_wins_over_auto_and_keras_json():
    assert choose_backend("default_dnn", "tensorflow", environ={}, installed=ALL,
                          configured="torch") == ("tensorflow", "the config's backend setting")
    assert choose_backend("transfer_learning", "jax", environ={}, installed=ALL)[0] == "jax"


def test_a_setting_naming_a_backend_not_installed_is_refused_in_one_line():
    with pytest.raises(ValueError) as info:
        choose_backend("default_dnn", "torch", environ={}, installed=("tensorflow", "jax"))
    assert str(info.value) == ("backend: 'torch' is not installed: pip install torch, or set "
                               "backend to auto (e.g. --set backend=auto)")


def test_keras_json_counts_only_where_it_names_another_backend_than_keras_writes():
    # Keras writes keras.json itself, with "tensorflow", on its first import.
    assert choose_backend("default_dnn", environ={}, installed=ALL,
                          configured="tensorflow")[0] == "jax"
    assert choose_backend("default_dnn", environ={}, installed=ALL,
                          configured="torch") == ("torch", "keras.json")


@pytest.mark.parametrize("config, overrides, expected", [
    ("default_dnn", [], ("default_dnn", "auto")),
    ("Transfer_Learning", [], ("transfer_learning", "auto")),
    ("default_dnn", ["backend=jax"], ("default_dnn", "jax")),
    ("default_dnn", ["backend='TensorFlow'", "recipe=baseline"], ("baseline", "tensorflow")),
    ("default_dnn", ["backend=jaxx"], ("default_dnn", "auto")),  # refused later, in one line
    ("{tmp}/run.yaml", [], ("transfer_learning", "torch")),
    ("{tmp}/missing.yaml", [], ("default_dnn", "auto")),
    ("{tmp}/broken.yaml", ["model.units=3"], ("default_dnn", "auto")),
])
def test_requested_reads_the_recipe_and_setting_without_validating(tmp_path, config, overrides,
                                                                    expected):
    (tmp_path / "run.yaml").write_text("recipe: transfer_learning\nbackend: torch\n")
    (tmp_path / "broken.yaml").write_text("recipe: [\n")
    assert _backend.requested(config.format(tmp=tmp_path), overrides) == expected


def test_choose_for_command_sets_the_environment_and_says_so(tmp_path):
    environ = {"KERAS_HOME": str(tmp_path)}
    args = argparse.Namespace(config="transfer_learning", overrides=[])
    assert _backend.choose_for_command(args, environ) == "tensorflow"
    assert environ["KERAS_BACKEND"] == "tensorflow"
    assert _backend.describe("tensorflow", environ=environ) == (
        f"backend: tensorflow (auto: TensorFlow's kernels, fastest for convolutional models; "
        f"{HINT})")
    # Set by the user: kept, and said.
    environ = {"KERAS_BACKEND": "tensorflow", "KERAS_HOME": str(tmp_path)}
    args = argparse.Namespace(config="default_dnn", overrides=["backend=jax"])
    assert _backend.choose_for_command(args, environ) == "tensorflow"
    assert _backend.CHOSEN not in environ
    assert _backend.describe("tensorflow", "jax", environ) == \
        "backend: tensorflow (KERAS_BACKEND; the config's backend: jax is not used)"


def test_describe_a_backend_keras_had_already():
    assert _backend.describe("tensorflow", environ={}) == \
        "backend: tensorflow (Keras's configured backend)"


def test_keras_json_is_read_from_keras_home(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert _backend._keras_json_backend({"KERAS_HOME": str(tmp_path)}) == "torch"
    assert _backend._keras_json_backend({"KERAS_HOME": str(tmp_path / "none")}) is None


@pytest.mark.slow  # a CLI process that trains (~20 s on 2 cores)
def test_train_without_keras_backend_runs_on_the_chosen_backend_and_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("KERAS_BACKEND", _backend.CHOSEN)}
    env["KERAS_HOME"] = str(tmp_path / "keras_home")  # no keras.json of the machine's
    output = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "keras_recipes_cli", "train", "--set", "fit.epochs=1",
         "--set", "dataset.max_train_samples=200", "--output", str(output)],
        capture_output=True, text=True, timeout=300, env=env,
        cwd=pathlib.Path(__file__).parents[1])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    expected = "jax" if importlib.util.find_spec("jax") else "tensorflow"
    assert f"\nbackend: {expected} (auto: " in result.stdout, result.stdout
    assert result.stderr == ""  # TensorFlow's start-up lines stay hidden on JAX too
    assert (output / "model.keras").is_file()
