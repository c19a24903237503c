"""A command-line run's record across a kill and a resume (issue #17).

`history.csv` is written at every epoch end, before the epoch is backed up, so a run killed
with SIGKILL and started again with the same command continues the record: `history.csv`
numbered 1..N without gaps or duplicates, `metrics.json` counting every epoch, `report.md`
saying where the run resumed.
"""

import csv
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from test_recipes import conv_base, small_data

import keras_recipes
from keras_recipes import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _rows(output):
    path = output / "history.csv"
    return list(csv.DictReader(path.open())) if path.is_file() else []


# Two CLI runs in one process (one TensorFlow start-up), from a cleared Keras session each.
_FIRST_THEN_SECOND = ("import json, sys, keras; from keras_recipes import cli; "
                      "first, second = json.loads(sys.argv[1]); assert cli.main(first) == 0; "
                      "keras.backend.clear_session(); sys.exit(cli.main(second))")


def _kill_when(argv, output, ready, timeout=600, first=None):
    """Starts the CLI in a subprocess and kills it (SIGKILL) once `ready(rows)`; the rows left.

    With `first` (arguments), the subprocess first runs the CLI with those, to the end.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    command = ["-m", "keras_recipes.cli", *argv] if first is None else [
        "-c", _FIRST_THEN_SECOND, json.dumps([first, argv])]
    with open(output.parent / f"{output.name}-killed.log", "w") as log:
        process = subprocess.Popen([sys.executable, *command], cwd=ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        try:
            while not ready(_rows(output)):
                assert process.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline, "the run recorded too few epochs in time"
                time.sleep(0.002)
            os.kill(process.pid, signal.SIGKILL)
            assert process.wait(timeout=60) == -signal.SIGKILL
        finally:
            if process.poll() is None:
                process.kill()
    return _rows(output)


def _resume(argv):
    result = subprocess.run([sys.executable, "-m", "keras_recipes.cli", *argv], cwd=ROOT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                                     PYTHONPATH=str(ROOT)),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _check_continued(killed, rows, metrics, epochs):
    """The record of the resumed run continues the killed one's, by epoch number."""
    assert [row["epoch"] for row in rows] == [str(epoch) for epoch in range(1, epochs + 1)]
    # The killed run's last recorded epoch may not have been backed up: then it ran again.
    assert metrics["resumed_at_epoch"] in (len(killed), len(killed) + 1)
    kept = metrics["resumed_at_epoch"] - 1
    assert rows[:kept] == killed[:kept]  # the epochs before the kill are kept as they were
    assert all(row["loss"] != "" for row in rows)
    assert metrics["epochs_run"] == epochs and metrics["status"] == "completed"
    # The best epoch is the whole run's, the epochs before the kill included.
    val_losses = [float(row["val_loss"]) for row in rows]
    assert metrics["lowest_val_loss_epoch"] == 1 + int(np.argmin(val_losses))
    assert metrics["lowest_val_loss"] == pytest.approx(min(val_losses))


def _check_report_says_resumed(output, metrics):
    resumed = metrics["resumed_at_epoch"]
    assert f"resumed at epoch {resumed} from its backup: epochs 1-{resumed - 1}" in \
        (output / "report.md").read_text()


@pytest.mark.slow  # three CLI runs in two processes, each compiling its model (~20 s each)
def test_a_run_killed_with_sigkill_resumes_with_the_record_of_every_epoch(tmp_path):
    output = tmp_path / "run"
    settings = ["--set", "fit.epochs=30", "--set", "fit.batch_size=128",
                "--set", "model.num_hidden_layers=1", "--set", "model.units=16",
                "--set", "model.backup_dir=backup",
                "--set", "model.early_stopping_patience=null"]
    argv = ["train", "--output", str(output), *settings]
    straight = tmp_path / "straight"
    killed = _kill_when(argv, output, lambda rows: len(rows) >= 5,  # after the run not killed
                        first=["train", "--output", str(straight), *settings])
    assert (straight / "metrics.json").is_file()
    assert not (output / "metrics.json").exists() and (output / "backup").is_dir()
    printed = _resume(argv)
    rows = _rows(output)
    metrics = json.loads((output / "metrics.json").read_text())
    _check_continued(killed, rows, metrics, 30)
    resumed = metrics["resumed_at_epoch"]
    assert f"Epoch {resumed}/30" in printed and f"Epoch {resumed - 1}/30" not in printed
    assert metrics["kept_epoch"] == 30 and metrics["kept_by"] == "last_epoch"
    assert metrics["kept_val_loss"] == pytest.approx(float(rows[-1]["val_loss"]))
    _check_report_says_resumed(output, metrics)
    assert not (output / "backup").exists()
    # The same run as the one not killed: the same record and the same final weights.
    for row, expected in zip(rows, _rows(straight), strict=True):
        for key in ("loss", "val_loss", "accuracy"):
            assert float(row[key]) == pytest.approx(float(expected[key]), rel=1e-5, abs=1e-6)
    weights = keras.models.load_model(output / "model.keras").get_weights()
    expected = keras.models.load_model(straight / "model.keras").get_weights()
    for got, want in zip(weights, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.fixture
def transfer_files(tmp_path):
    base, images = tmp_path / "base.keras", tmp_path / "images.npz"
    conv_base(rescaling=True).save(base)
    x, y = small_data("transfer_learning", n=120)
    np.savez(images, x=x, y=y)
    return base, images


@pytest.mark.slow  # three CLI processes, each compiling both phases' models
@pytest.mark.parametrize("killed_in", [1, 2])
def test_a_transfer_run_killed_in_either_phase_resumes_with_both_phases_record(
        tmp_path, transfer_files, killed_in):
    base, images = transfer_files
    output = tmp_path / "run"
    argv = ["train", "transfer_learning", "--dataset", str(images), "--output", str(output)]
    for setting in (f"model.base={base}", "fit.unfreeze=3", "fit.head_epochs=12",
                    "fit.epochs=12", "model.backup_dir=backup",
                    "model.early_stopping_patience=null"):
        argv += ["--set", setting]
    killed = _kill_when(argv, output, lambda rows: sum(
        row["phase"] == str(killed_in) for row in rows) >= 3)
    printed = _resume(argv)
    rows = _rows(output)
    metrics = json.loads((output / "metrics.json").read_text())
    _check_continued(killed, rows, metrics, 24)
    assert [row["phase"] for row in rows] == ["1"] * 12 + ["2"] * 12
    assert metrics["phase_1_epochs_run"] == 12 and metrics["phase_2_epochs_run"] == 12
    # Killed in phase 1 (at its epoch 3 or later): phase 2 starts afresh. Killed in phase 2:
    # phase 1 is not trained again, and phase 2 goes on from its epoch 3 or later.
    assert printed.count("Epoch 1/12") == (1 if killed_in == 1 else 0)
    if killed_in == 2:
        assert rows[:12] == killed[:12]
    _check_report_says_resumed(output, metrics)
    # fine_tune's guard kept the best of phase 1's last epoch (no early stopping) and phase
    # 2's epochs, a resumed phase 2's included: the saved model holds that epoch's weights.
    val_losses = [float(row["val_loss"]) for row in rows]
    kept = 12 + int(np.argmin(val_losses[11:]))
    assert metrics["kept_epoch"] == kept and metrics["kept_by"] == "best_of_both_phases"
    assert metrics["kept_val_loss"] == pytest.approx(val_losses[kept - 1])
    model = keras.models.load_model(output / "model.keras")
    data = keras_recipes.datasets.load(str(images), standardize=False, seed=0)
    validation = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)
    assert validation["loss"] == pytest.approx(val_losses[kept - 1], rel=1e-4)
    assert not (output / "backup").exists()


@pytest.mark.train
def test_a_resumed_run_replaces_a_recorded_epoch_that_was_not_backed_up(tmp_path, monkeypatch):
    # Ctrl-C in epoch 3 leaves the backup of epoch 2. The record then gets an epoch 3 as if
    # the run had been killed after recording epoch 3 but before backing it up: the resumed
    # run trains epoch 3 again, and its record has that epoch once.
    original_fit = keras_recipes.RecipeModel.fit

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    def fit(self, *args, **kwargs):
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), Interrupt()]
        return original_fit(self, *args, **kwargs)

    output = tmp_path / "run"
    argv = ["train", "--output", str(output), "--set", "fit.epochs=4", "--set",
            "fit.batch_size=128", "--set", "model.num_hidden_layers=1", "--set",
            "model.backup_dir=backup", "--set", "model.early_stopping_patience=null"]
    with monkeypatch.context() as patch:
        patch.setattr(keras_recipes.RecipeModel, "fit", fit)
        assert cli.main(argv) == 130
    before = _rows(output)
    assert [row["epoch"] for row in before] == ["1", "2"]
    with (output / "history.csv").open("a") as file:
        file.write("3,0.5,999.0,0.5,999.0\n")
    assert cli.main(argv) == 0
    rows = _rows(output)
    assert [row["epoch"] for row in rows] == ["1", "2", "3", "4"] and rows[:2] == before
    assert all(row["loss"] != "999.0" for row in rows)
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["resumed_at_epoch"] == 3 and metrics["epochs_run"] == 4


def test_a_fresh_run_does_not_continue_an_old_record(tmp_path):
    output = tmp_path / "run"
    output.mkdir()
    (output / "history.csv").write_text("epoch,loss\n1,9.0\n2,8.0\n3,7.0\n")
    argv = ["train", "--output", str(output), "--set", "fit.epochs=2", "--set",
            "fit.batch_size=128", "--set", "model.num_hidden_layers=1"]
    assert cli.main(argv) == 0
    rows = _rows(output)
    assert [row["epoch"] for row in rows] == ["1", "2"] and rows[0]["loss"] != "9.0"
    assert "resumed_at_epoch" not in json.loads((output / "metrics.json").read_text())


def _backed_up_epochs(folder):
    path = pathlib.Path(folder) / "training_metadata.json"
    return json.loads(path.read_text())["epoch"] if path.is_file() else 0


@pytest.mark.train
def test_your_callbacks_see_each_epoch_before_it_is_backed_up(tmp_path):
    seen = []

    class Probe(keras.callbacks.Callback):
        def __init__(self, folder):
            super().__init__()
            self.folder = folder

        def on_epoch_end(self, epoch, logs=None):
            folder = self.folder(self.model)
            seen.append((getattr(self.model, "fine_tune_phase", None), epoch,
                         _backed_up_epochs(folder)))

    x, y = small_data(n=64)
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=1, units=8, seed=0,
                                            backup_dir=tmp_path / "backup")
    model.fit(x, y, epochs=3, batch_size=32, verbose=0,
              callbacks=[Probe(lambda model: tmp_path / "backup")])
    assert seen == [(None, 0, 0), (None, 1, 1), (None, 2, 2)]  # not yet this epoch's backup

    seen.clear()
    images, labels = small_data("transfer_learning", n=64)
    transfer = keras_recipes.build_transfer_model(conv_base(), 3, seed=0)
    folder = tmp_path / "transfer_backup"
    keras_recipes.fine_tune(
        transfer, (images, labels), head_epochs=2, epochs=2, unfreeze=3, batch_size=32,
        backup_dir=folder, verbose=0,
        callbacks=[Probe(lambda model: folder / f"phase_{model.fine_tune_phase}")])
    assert seen == [(1, 0, 0), (1, 1, 1), (2, 0, 0), (2, 1, 1)]
    assert transfer.fine_tune_phase is None
