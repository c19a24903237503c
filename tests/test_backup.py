"""AtomicBackupAndRestore: what a kill at any instant leaves behind still resumes the run.

A SIGKILL cannot be caught, so these tests leave in the folder what one would leave (a
truncated temporary file, a complete weights file the metadata does not name yet) and start
the run again; tests/test_run_record.py kills real CLI runs with SIGKILL.
"""

import json

import keras
import numpy as np
import pytest

from keras_recipes.callbacks import AtomicBackupAndRestore

X = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
Y = X @ np.ones((3, 2), "float32")


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


class Stop(keras.callbacks.Callback):
    """Raises after `epoch` (0-based) has ended and been backed up."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("stopped")


def _interrupted_run(backup, after_epoch, callback=AtomicBackupAndRestore):
    model = _model()
    with pytest.raises(RuntimeError, match="stopped"):
        model.fit(X, Y, epochs=5, verbose=0, callbacks=[callback(str(backup)), Stop(after_epoch)])
    return model


def _resume(backup):
    model = _model()
    seen = {}

    class Start(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.setdefault("epoch", epoch)
            seen.setdefault("weights", [w.copy() for w in self.model.get_weights()])

    history = model.fit(X, Y, epochs=5, verbose=0,
                        callbacks=[AtomicBackupAndRestore(str(backup)), Start()])
    return history, seen


@pytest.mark.train
def test_each_epoch_replaces_the_last_backup_and_a_completed_fit_removes_it(tmp_path):
    backup = tmp_path / "backup"
    interrupted = _interrupted_run(backup, after_epoch=2)
    assert sorted(p.name for p in backup.iterdir()) == ["epoch_3.weights.h5",
                                                       "training_metadata.json"]
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 3
    history, seen = _resume(backup)
    assert history.epoch == [3, 4] and seen["epoch"] == 3
    for got, expected in zip(seen["weights"], interrupted.get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert not backup.exists()


def test_a_kill_while_writing_the_weights_resumes_from_the_last_complete_epoch(tmp_path):
    backup = tmp_path / "backup"
    _interrupted_run(backup, after_epoch=1)
    kept = [w.copy() for w in _weights_in(backup / "epoch_2.weights.h5")]
    # Killed while epoch 3's weights were written: a truncated temporary file.
    truncated = b"\x89HDF\r\n\x1a\n" + b"\0" * 88
    (backup / ".epoch_3.weights.h5.k1ll3d.weights.h5").write_bytes(truncated)
    history, seen = _resume(backup)
    assert history.epoch == [2, 3, 4]
    for got, expected in zip(seen["weights"], kept):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.train
def test_a_kill_between_the_weights_and_the_metadata_resumes_a_consistent_epoch(tmp_path):
    backup = tmp_path / "backup"
    _interrupted_run(backup, after_epoch=1)
    kept = _weights_in(backup / "epoch_2.weights.h5")
    ahead = _model()  # epoch 3's weights renamed into place, the metadata not yet replaced
    ahead.save_weights(backup / "epoch_3.weights.h5")
    history, seen = _resume(backup)
    assert history.epoch == [2, 3, 4]  # epoch 2's metadata with epoch 2's weights
    for got, expected in zip(seen["weights"], kept):
        np.testing.assert_array_equal(got, expected)


def test_a_backup_written_by_keras_s_own_callback_still_resumes(tmp_path):
    backup = tmp_path / "backup"
    interrupted = _interrupted_run(backup, after_epoch=2, callback=keras.callbacks.BackupAndRestore)
    history, seen = _resume(backup)
    assert history.epoch == [3, 4]
    for got, expected in zip(seen["weights"], interrupted.get_weights()):
        np.testing.assert_array_equal(got, expected)


def _weights_in(path):
    model = _model()
    model.optimizer.build(model.trainable_variables)
    model.load_weights(path)
    return model.get_weights()


@pytest.mark.train
def test_a_recipe_s_backup_dir_is_backed_up_by_this_callback(tmp_path):
    from test_recipes import small_data, small_model

    x, y = small_data()
    backup = tmp_path / "backup"
    model = small_model("default_dnn", backup_dir=str(backup))
    with pytest.raises(RuntimeError, match="stopped"):
        # Your callbacks see an epoch's end before the recipe backs it up: epoch 2 is not.
        model.fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[Stop(1)])
    # The weights, the callbacks' and random state of epoch 1, and the run's record.
    assert sorted(p.name for p in backup.iterdir()) == [
        "epoch_1.state.npz", "epoch_1.weights.h5", "keras_recipes_backup.json",
        "training_metadata.json"]
