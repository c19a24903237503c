import csv
import json
import subprocess
import sys

import keras
import pytest

from keras_recipes import cli


def test_train_writes_model_history_settings_and_prints_test_accuracy(tmp_path, capsys):
    output = tmp_path / "run"
    assert cli.main(["train", "--epochs", "3", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "Test accuracy: " in printed and "Epoch 3/3" in printed
    assert sorted(p.name for p in output.iterdir()) == [
        "history.csv", "metrics.json", "model.keras", "settings.json"]
    rows = list(csv.DictReader((output / "history.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"] and "val_loss" in rows[0]
    settings = json.loads((output / "settings.json").read_text())
    assert settings["recipe"] == "default_dnn" and settings["dataset"] == "digits"
    metrics = json.loads((output / "metrics.json").read_text())
    model = keras.models.load_model(output / "model.keras")
    assert model.evaluate(*_digits_test(), verbose=0, return_dict=True)["accuracy"] == \
        pytest.approx(metrics["test_accuracy"], abs=1e-6)


def _digits_test():
    from keras_recipes import datasets

    data = datasets.load("digits", seed=0)
    return data.x_test, data.y_test


@pytest.mark.parametrize("argv, message", [
    (["train", "default_dn"], "Argument `name` must be one of 'default_dnn', 'self_normalizing'. "
     "Received: name='default_dn'. Did you mean 'default_dnn'?"),
    (["train", "--epochs", "0"],
     "Argument `epochs` must be a positive integer. Received: epochs=0"),
])
def test_bad_usage_exits_2_with_one_line(argv, message, capsys, tmp_path):
    assert cli.main([*argv, "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"keras-recipes: error: {message}"
    assert not (tmp_path / "x").exists()


def test_list_and_help(capsys):
    assert cli.main(["list"]) == 0
    assert "default_dnn" in capsys.readouterr().out
    assert cli.main(["train", "--help"]) == 0
    assert "--epochs" in capsys.readouterr().out


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "keras_recipes.cli", "list"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "self_normalizing" in result.stdout
