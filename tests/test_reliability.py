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
    if resumed.auto_one_cycle:
        assert resumed.optimizer._learning_rate.get_config() == \
            straight.optimizer._learning_rate.get_config()
        assert float(resumed.optimizer.beta_1) == pytest.approx(float(straight.optimizer.beta_1))
    assert not backup.exists()  # Keras deletes the backup once training completes


def test_backup_dir_is_saved_with_the_model(tmp_path):
    model = keras_recipes.build_default_dnn((4,), 3, backup_dir=str(tmp_path / "b"))
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").backup_dir == str(tmp_path / "b")
    with pytest.raises(TypeError, match="Argument `backup_dir` must be None or a folder path"):
        keras_recipes.build_default_dnn((4,), 3, backup_dir=3)


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


def test_a_fit_after_a_resumed_fit_runs_all_its_epochs(tmp_path):
    """Keras's BackupAndRestore leaves the restored epoch set; the next fit must not use it."""
    x, y = _data()
    model = keras_recipes.build_default_dnn((12,), 3, seed=0, backup_dir=tmp_path / "backup")
    with pytest.raises(RuntimeError, match="induced crash"):
        model.fit(x, y, epochs=3, batch_size=32, callbacks=[Crash(epoch=2, batch=1)], verbose=0)
    resumed = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert len(resumed.history["loss"]) == 1  # epochs 0 and 1 had finished
    assert len(model.fit(x, y, epochs=2, batch_size=32, verbose=0).history["loss"]) == 2
