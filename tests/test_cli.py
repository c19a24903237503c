import csv
import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes import cli

REPORT_FILES = ["config.yaml", "history.csv", "learning_curves.png", "metrics.json",
                "model.keras", "report.md", "schedule.png"]


def _png_size(path):
    import matplotlib.image

    return matplotlib.image.imread(path).shape[:2]


def test_train_writes_the_full_report_and_prints_a_summary(tmp_path, capsys):
    output = tmp_path / "run"
    assert cli.main(["train", "--set", "fit.epochs=3", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "Run summary" in printed and "Test accuracy: " in printed and "Epoch 3/3" in printed
    assert sorted(p.name for p in output.iterdir()) == REPORT_FILES
    rows = list(csv.DictReader((output / "history.csv").open()))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"] and "val_loss" in rows[0]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == 3
    assert 1 <= metrics["best_epoch"] <= 3
    for png in ("learning_curves.png", "schedule.png"):
        height, width = _png_size(output / png)
        assert height >= 300 and width >= 500
    report = (output / "report.md").read_text()
    assert "![Learning curves](learning_curves.png)" in report and "| test_accuracy |" in report
    model = keras.models.load_model(output / "model.keras")
    data = keras_recipes.datasets.load("digits", seed=0)
    evaluated = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    assert evaluated["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert not list(output.glob(".*"))  # no temporary files left behind

    assert cli.main(["evaluate", str(output)]) == 0
    assert f"test_accuracy  {metrics['test_accuracy']:.4f}" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("recipe", keras_recipes.list_recipes())
def test_every_shipped_config_trains_end_to_end(recipe, tmp_path):
    output = tmp_path / recipe
    assert cli.main(["train", recipe, "--set", "fit.epochs=2", "--output", str(output)]) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["test_accuracy"] > 0.5


@pytest.mark.parametrize("argv, message", [
    (["train", "default_dn"], "'default_dn' is neither a recipe (baseline, default_dnn, "
     "self_normalizing) nor a YAML file (.yaml/.yml). Did you mean 'default_dnn'?"),
    (["train", "--set", "fit.epochs=0"],
     "default_dnn.yaml: fit.epochs: Argument `epochs` must be a positive integer. "
     "Received: epochs=0"),
    (["train", "--set", "model.dropout_rate=1.5"],
     "default_dnn.yaml: model.dropout_rate: Argument `dropout_rate` must be in the range [0, 1). "
     "Received: dropout_rate=1.5"),
    (["train", "--set", "model.units=many"],
     "default_dnn.yaml: model.units: Argument `units` must be a positive integer. "
     "Received: units='many'"),
    (["train", "--dataset", "digitz"], "default_dnn.yaml: dataset.name: Argument `name` must be "
     "'digits', a .npz / .csv path, or a TensorFlow Datasets name. Received: name='digitz'. "
     "Did you mean 'digits'?"),
    (["train", "missing.yaml"], "missing.yaml: no such config file"),
    (["show", "--set", "model.unitz=3"], "default_dnn.yaml: unknown key `model.unitz`."),
])
def test_bad_usage_exits_2_with_one_line(argv, message, capsys, tmp_path):
    if argv[0] == "train":
        argv = [*argv, "--output", str(tmp_path / "x")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"keras-recipes: error: {message}")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("text, message", [
    ("recipe: default_dnn\nmodle: {}\n", "unknown key `modle`"),
    ("recipe: default_dnn\nfit: {epochs: ten}\n", "fit.epochs: Argument `epochs`"),
    ("recipe: default_dnn\nmodel: {activation: relu6}\n", "model.activation: Argument "
     "`activation` must be one of"),
    ("recipe: default_dnn\nmodel: {units: [\n", "invalid YAML"),
])
def test_broken_config_files_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    assert cli.main(["train", str(path), "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: " in err and message in err


def test_show_prints_resolved_settings(capsys):
    assert cli.main(["show", "self_normalizing", "--set", "fit.epochs=4"]) == 0
    import yaml

    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["recipe"] == "self_normalizing" and shown["fit"]["epochs"] == 4
    assert shown["model"]["activation"] == "selu"


def test_ctrl_c_leaves_a_consistent_folder_marked_interrupted(tmp_path, monkeypatch):
    original_fit = keras_recipes.RecipeModel.fit

    class Interrupt(keras.callbacks.Callback):
        """Ctrl-C in the middle of the second epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 5:
                raise KeyboardInterrupt

    def fit(self, *args, **kwargs):
        kwargs["callbacks"] = [Interrupt()]
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras_recipes.RecipeModel, "fit", fit)
    output = tmp_path / "run"
    assert cli.main(["train", "--set", "fit.epochs=5", "--output", str(output)]) == 130
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] == 1
    assert len(list(csv.DictReader((output / "history.csv").open()))) == 1
    reloaded = keras.models.load_model(output / "model.keras")
    assert int(reloaded.optimizer.iterations) > 0


def test_training_failure_exits_1(tmp_path, monkeypatch, capsys):
    def fit(self, *args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(keras_recipes.RecipeModel, "fit", fit)
    assert cli.main(["train", "--output", str(tmp_path / "run")]) == 1
    assert "training failed: RuntimeError: out of memory" in capsys.readouterr().err


def test_evaluate_a_model_file_on_another_dataset(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.normal(size=(60, 64)), y=rng.integers(0, 10, 60))
    model = keras_recipes.build_default_dnn((64,), 10, num_hidden_layers=1)
    model.save(tmp_path / "m.keras")
    assert cli.main(["evaluate", str(tmp_path / "m.keras"), "--dataset", str(path)]) == 0
    assert "test_accuracy" in capsys.readouterr().out
    assert cli.main(["evaluate", str(tmp_path / "absent.keras")]) == 2


def test_list_and_help(capsys):
    assert cli.main(["list"]) == 0
    assert "default_dnn" in capsys.readouterr().out
    for command in ("train", "show", "evaluate", "list", "lr-find"):
        assert cli.main([command, "--help"]) == 0
        assert "usage: keras-recipes" in capsys.readouterr().out


def test_console_entry_point_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "keras_recipes.cli", "list"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "self_normalizing" in result.stdout


def test_lr_find_prints_suggestions_and_writes_the_curve(tmp_path, capsys):
    output = tmp_path / "lrf"
    assert cli.main(["lr-find", "--num-steps", "30", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "Suggested learning rate:" in printed and "valley" in printed
    data = json.loads((output / "lr_finder.json").read_text())
    assert len(data["learning_rates"]) <= 30 and data["suggestion"] > 0
    assert _png_size(output / "lr_finder.png")[1] >= 500
    assert cli.main(["lr-find", "--num-steps", "1", "--output", str(output)]) == 2


def test_train_with_lr_find_uses_the_suggestion_and_reports_the_curve(tmp_path):
    output = tmp_path / "run"
    assert cli.main(["train", "--set", "fit.epochs=2", "--set", "report.lr_find=true",
                     "--output", str(output)]) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["found_learning_rate"] > 0
    assert "lr_finder.png" in (output / "report.md").read_text()
    model = keras.models.load_model(output / "model.keras")
    assert model.optimizer._learning_rate.max_learning_rate == pytest.approx(
        metrics["found_learning_rate"])


def test_mc_dropout_run_reports_uncertainty(tmp_path):
    output = tmp_path / "run"
    assert cli.main(["train", "--set", "fit.epochs=2", "--set", "model.dropout_rate=0.2",
                     "--set", "report.mc_dropout_samples=10", "--output", str(output)]) == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert 0.5 < metrics["mc_test_accuracy"] <= 1 and 0 <= metrics["mc_test_ece"] <= 1
    assert "![MC Dropout uncertainty (10 samples)](uncertainty.png)" in \
        (output / "report.md").read_text()
    assert _png_size(output / "uncertainty.png")[1] >= 500


def test_mc_dropout_on_a_model_without_dropout_exits_2(tmp_path, capsys):
    assert cli.main(["train", "--set", "fit.epochs=1", "--set", "report.mc_dropout_samples=5",
                     "--output", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert "report.mc_dropout_samples: " in captured.err
    assert "Training" not in captured.out and not (tmp_path / "run").exists()


@pytest.mark.parametrize("backup_dir", ["../outside", "/tmp/elsewhere"])
def test_config_paths_cannot_escape_the_output_folder(tmp_path, capsys, backup_dir):
    assert cli.main(["train", "--set", f"model.backup_dir={backup_dir}",
                     "--output", str(tmp_path / "run")]) == 2
    assert "outside the output folder" in capsys.readouterr().err
    assert not (tmp_path / "outside").exists()


def test_config_backup_dir_inside_the_output_folder_is_used(tmp_path):
    output = tmp_path / "run"
    assert cli.main(["train", "--set", "fit.epochs=1", "--set", "model.backup_dir=backup",
                     "--output", str(output)]) == 0
    model = keras.models.load_model(output / "model.keras")
    assert model.backup_dir == str((output / "backup").resolve())
