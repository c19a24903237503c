"""Interrupted training loses nothing; what the package imports stays lazy."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from test_recipes import (  # each recipe's (and own model's) small inputs and model
    MODEL_KINDS,
    _accepts,
    small_data,
    small_model,
)

import keras_recipes
from keras_recipes.optimizers import learning_rate_schedule


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(192, 12)).astype("float32")
    return x, x[:, :3].argmax(axis=1).astype("int64")


class Crash(keras.callbacks.Callback):
    """Kills the run in the middle of epoch `epoch`."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.crash_epoch, self.crash_batch = epoch, batch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.crash_epoch and batch == self.crash_batch:
            raise RuntimeError("induced crash")


@pytest.mark.train
@pytest.mark.parametrize("name", MODEL_KINDS)
def test_a_run_killed_mid_epoch_resumes_to_the_same_final_state(name, tmp_path):
    if not _accepts(name, "backup_dir"):
        pytest.skip(f"the {name} recipe takes no backup_dir")
    x, y = small_data(name)
    extra = {"dropout_rate": 0.2} if _accepts(name, "dropout_rate") else {}

    def run(backup_dir=None, callbacks=()):
        model = small_model(name, backup_dir=backup_dir, **extra)
        model.fit(x, y, epochs=4, batch_size=32, shuffle=False, verbose=0,
                  callbacks=list(callbacks))
        return model

    straight = run()
    backup = tmp_path / "backup"
    with pytest.raises(RuntimeError, match="induced crash"):
        run(backup, [Crash(epoch=2, batch=3)])
    assert (backup / "training_metadata.json").is_file()
    resumed = run(backup)  # the same call again, in a fresh model

    assert int(resumed.optimizer.iterations) == int(straight.optimizer.iterations) == 24
    for got, expected in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    for got, expected in zip(resumed.optimizer.variables, straight.optimizer.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got),
                                   keras.ops.convert_to_numpy(expected), rtol=1e-6, atol=1e-6)
    assert float(resumed.optimizer.learning_rate) == pytest.approx(
        float(straight.optimizer.learning_rate), rel=1e-6)
    if resumed.recipe.stretches_one_cycle:
        assert learning_rate_schedule(resumed.optimizer).get_config() == \
            learning_rate_schedule(straight.optimizer).get_config()
        assert float(resumed.optimizer.beta_1) == pytest.approx(float(straight.optimizer.beta_1))
    assert not backup.exists()  # Keras deletes the backup once training completes


def test_backup_dir_is_not_saved_with_the_model_and_a_loaded_model_touches_no_folder(tmp_path):
    folder = tmp_path / "b"
    model = keras_recipes.build_default_dnn((4,), 3, backup_dir=str(folder))
    assert model.recipe.backup_dir == str(folder)
    model.save(tmp_path / "m.keras")
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.recipe.backup_dir is None
    x, y = np.random.default_rng(0).normal(size=(32, 4)), np.arange(32) % 3
    loaded.fit(x, y, epochs=2, verbose=0)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    with pytest.raises(TypeError, match="Argument `backup_dir` must be None or a folder path"):
        keras_recipes.build_default_dnn((4,), 3, backup_dir=3)


@pytest.mark.train
@pytest.mark.parametrize("backend, absent", [("jax", "tensorflow"), ("torch", "tensorflow")])
def test_import_does_not_load_a_backend_the_user_did_not_choose(backend, absent):
    pytest.importorskip(backend)
    code = ("import sys, keras_recipes; "
            f"print({absent!r} in sys.modules, 'tensorflow_datasets' in sys.modules)")
    env = dict(os.environ, KERAS_BACKEND=backend)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.train
def test_a_reloaded_model_draws_the_same_dropout_masks_as_the_original(tmp_path):
    x, y = _data()
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=2, units=16,
                                            dropout_rate=0.3, seed=0, total_steps=60)
    model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    for m in (model, reloaded):
        m.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    for got, expected in zip(reloaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.train
def test_a_fit_after_a_resumed_fit_runs_all_its_epochs(tmp_path):
    """Keras's BackupAndRestore leaves the restored epoch set; the next fit must not use it."""
    x, y = _data()
    model = keras_recipes.build_default_dnn((12,), 3, seed=0, backup_dir=tmp_path / "backup")
    with pytest.raises(RuntimeError, match="induced crash"):
        model.fit(x, y, epochs=3, batch_size=32, callbacks=[Crash(epoch=2, batch=1)], verbose=0)
    ran = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ran.append(epoch))
    resumed = model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[record])
    assert ran == [2]  # epochs 0 and 1 had finished
    assert resumed.epoch == [0, 1, 2]  # and the history holds the whole run
    assert len(resumed.history["loss"]) == 3 and None not in resumed.history["loss"]
    assert len(model.fit(x, y, epochs=2, batch_size=32, verbose=0).history["loss"]) == 2


class CrashAtEpochEnd(keras.callbacks.Callback):
    """Stops the run (an exception, as a kill would) at the end of epoch `epoch`, after the
    recipe has backed that epoch up."""

    def __init__(self, epoch):
        super().__init__()
        self.crash_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.crash_epoch + 1:
            raise RuntimeError("induced crash")


@pytest.mark.train
@pytest.mark.parametrize("schedule", ["constant", "plateau", "one_cycle"])
def test_a_resumed_run_keeps_early_stopping_and_plateau_state(schedule, tmp_path):
    """Killed after its best epoch, then started again: the same epochs, the same best
    weights and the same early-stopping decision as the run that was not interrupted
    (before the recipe owned this state, the resumed run waited anew and trained on)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = rng.integers(0, 3, 96)  # noise: the validation loss soon rises, so it stops
    validation = (rng.normal(size=(48, 6)).astype("float32"), rng.integers(0, 3, 48))

    def run(backup_dir=None, callbacks=()):
        keras.utils.set_random_seed(0)
        model = keras_recipes.build_default_dnn(
            (6,), 3, num_hidden_layers=2, units=32, learning_rate=3e-2, schedule=schedule,
            early_stopping_patience=2, backup_dir=backup_dir, seed=0)
        history = model.fit(x, y, epochs=12, batch_size=16, shuffle=False, verbose=0,
                            validation_data=validation, callbacks=list(callbacks))
        return model, history

    straight, straight_history = run()
    stopped = straight.early_stopping
    assert straight_history.epoch[-1] < 11  # early stopping acted
    crash_epoch = stopped.best_epoch + 1  # after the best epoch, before the stop
    assert crash_epoch < straight_history.epoch[-1]
    backup = str(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="induced crash"):
        run(backup, [CrashAtEpochEnd(crash_epoch)])
    resumed, resumed_history = run(backup)
    assert resumed_history.epoch[-1] == straight_history.epoch[-1]
    assert resumed.early_stopping.best_epoch == stopped.best_epoch
    assert resumed.early_stopping.stopped_epoch == stopped.stopped_epoch
    for got, expected in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert not os.path.exists(backup)  # a completed run leaves nothing behind
