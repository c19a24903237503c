"""A training run that `test_exact_resume.py` runs in a child process, kills with SIGKILL and
starts again: the same call each time, with a backup folder.

    python resumable_run.py SCHEDULE BACKUP_DIR RESULT.npz [--kill-in-epoch N] [--fine-tune]
    python resumable_run.py SCHEDULE BACKUP_DIR RESULT.npz --then-kill-after-best KILLED_DIR

It trains the default DNN (or fine-tunes a small transfer model with `--fine-tune`) on fixed
data with validation and early stopping, recipe defaults otherwise (several batches per
compiled call, shuffled arrays). With `--kill-in-epoch N`, a timer started when epoch N (of
the run, counted over both phases with `--fine-tune`) begins kills the process with SIGKILL
a moment later: inside that epoch, or while its backup is written. A run that completes
writes its final weights, history and early stopping's (or the guard's) choice to RESULT.
With `--then-kill-after-best KILLED_DIR`, the process then runs the same call again, from a
cleared Keras session, with the backup folder KILLED_DIR and killed in `kill_epoch(RESULT)`:
one process (one TensorFlow start-up) for the uninterrupted run and the killed one.
"""

import json
import os
import signal
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_recipes  # noqa: E402


def data(images=False):
    """Noisy labels: the validation loss soon rises, so early stopping (or the fine-tune
    guard) keeps an epoch before the last."""
    rng = np.random.default_rng(0)
    if images:  # few images: the unfrozen base overfits them in phase 2
        x = rng.integers(0, 256, (560, 8, 8, 3)).astype("float32")
        y = (x[:, :4, :, 0].mean(axis=(1, 2)) > 127).astype("int64") + (rng.random(560) < 0.3)
        return (x[:320], y[:320]), (x[320:], y[320:])
    x = rng.normal(size=(1200, 10)).astype("float32")
    y = (x[:, 0] + 0.8 * rng.normal(size=1200) > 0).astype("int64") + (x[:, 1] > 1)
    return (x[:900], y[:900]), (x[900:], y[900:])


class KillInEpoch(keras.callbacks.Callback):
    """Kills this process (SIGKILL) a moment after epoch `epoch` of the run begins."""

    def __init__(self, epoch, delay=0.05):
        super().__init__()
        self.kill_epoch, self.delay, self.seen = epoch, delay, 0

    def on_epoch_begin(self, epoch, logs=None):
        if self.seen == self.kill_epoch:
            threading.Timer(self.delay, os.kill, (os.getpid(), signal.SIGKILL)).start()
        self.seen += 1


def kill_epoch(record, fine_tune):
    """The epoch of the run just after its best one (in phase 2 with `--fine-tune`)."""
    if fine_tune:
        return record["history"]["phase"].index(2) + record["kept"]["phase_2_epoch"] + 1
    return record["kept"]["best_epoch"] + 1


def main(argv):
    schedule, backup_dir, result = argv[:3]
    kill = int(argv[argv.index("--kill-in-epoch") + 1]) if "--kill-in-epoch" in argv else None
    fine_tune = "--fine-tune" in argv
    keras.utils.set_random_seed(0)
    callbacks = [] if kill is None else [KillInEpoch(kill)]
    if fine_tune:
        (x, y), validation = data(images=True)
        inputs = keras.Input((8, 8, 3))
        h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="c1")(inputs)
        h = keras.layers.Conv2D(32, 3, strides=2, padding="same", name="c2")(h)
        base = keras.Model(inputs, keras.layers.ReLU(name="r2")(h), name="base")
        model = keras_recipes.build_transfer_model(
            base, 3, weights=None, preprocessing=keras.layers.Rescaling(1 / 255),
            schedule=schedule, early_stopping_patience=2, backup_dir=backup_dir, seed=0)
        history = keras_recipes.fine_tune(model, (x, y), validation, head_epochs=3, epochs=10,
                                          fine_tune_learning_rate=8e-3, batch_size=16,
                                          callbacks=callbacks, verbose=0)
        kept = history.params.get("best_weights")
    else:
        (x, y), validation = data()
        model = keras_recipes.build_default_dnn(
            (10,), 3, num_hidden_layers=2, units=32, dropout_rate=0.2, learning_rate=3e-2,
            schedule=schedule, early_stopping_patience=2, backup_dir=backup_dir, seed=0)
        history = model.fit(x, y, epochs=14, batch_size=32, validation_data=validation,
                            callbacks=callbacks, verbose=0)
        stopping = model.early_stopping
        kept = {"best_epoch": int(stopping.best_epoch),
                "stopped_epoch": int(stopping.stopped_epoch)}
    np.savez(result, *model.get_weights())
    with open(result + ".json", "w") as file:
        json.dump({"history": history.history, "epoch": history.epoch, "kept": kept}, file)
    if "--then-kill-after-best" in argv:
        with open(result + ".json") as file:
            epoch = kill_epoch(json.load(file), fine_tune)
        keras.backend.clear_session()  # layer names and random state as in a fresh process
        main([schedule, argv[argv.index("--then-kill-after-best") + 1],
              os.path.splitext(result)[0] + "-killed.npz",
              "--kill-in-epoch", str(epoch), *(["--fine-tune"] if fine_tune else [])])


if __name__ == "__main__":
    main(sys.argv[1:])
