"""One process of a data-parallel run on several processes (`test_multiprocess.py`).

    KERAS_BACKEND=jax [KERAS_DISTRIBUTION_JOB_ADDRESSES=127.0.0.1:PORT
    KERAS_DISTRIBUTION_NUM_PROCESSES=2 KERAS_DISTRIBUTION_PROCESS_ID=I] \
        python multiprocess_run.py RESULT BACKUP_DIR|- [--kill-in-epoch N] [--kind KIND]

Without the variables it is a run on one process. It trains the default DNN on fixed arrays
(global batch 32, shuffled, validation data) with the recipe's `distribution` from
`keras_recipes._processes.join_processes()`; the first process writes RESULT
(final weights and history). `--kill-in-epoch N` kills this process with SIGKILL a moment
after epoch N begins. `--kind compile_recipe` trains a model of its own given to
`compile_recipe` (built under `keras.distribution.set_distribution`), `--kind fine_tune` a
small transfer model through `fine_tune`'s two phases.
"""

import contextlib
import json
import os
import signal
import sys
import threading

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_recipes  # noqa: E402
from keras_recipes import _processes  # noqa: E402


class KillInEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.kill_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.kill_epoch:
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()


def _default(x, y, backup, distribution, callbacks):
    model = keras_recipes.build_default_dnn(
        (10,), 3, num_hidden_layers=2, units=16, dropout_rate=0.2, seed=0,
        backup_dir=backup, distribution=distribution)
    history = model.fit(x[:512], y[:512], epochs=6, batch_size=32,
                        validation_data=(x[512:], y[512:]), verbose=0, callbacks=callbacks)
    return model, history


def _compile_recipe(x, y, backup, distribution, callbacks):
    if distribution is not None:
        keras.distribution.set_distribution(distribution)
    inputs = keras.Input((10,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    own = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model = keras_recipes.compile_recipe(own, loss="sparse_categorical_crossentropy",
                                         metrics=["accuracy"], backup_dir=backup)
    history = model.fit(x[:512], y[:512], epochs=6, batch_size=32,
                        validation_data=(x[512:], y[512:]), verbose=0, callbacks=callbacks)
    return model, history


def _fine_tune(x, y, backup, distribution, callbacks):
    images = np.tile(x[:, :, None, None], (1, 1, 4, 3))[:, :8]  # (samples, 8, 4, 3)
    inputs = keras.Input(images.shape[1:])
    # The base's variables are made in the distribution, as a keras.applications base would be.
    with distribution.scope() if distribution else contextlib.nullcontext():
        features = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        base = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(features),
                           name="base")
    model = keras_recipes.build_transfer_model(base, 3, dropout_rate=0.0, seed=0,
                                               backup_dir=backup, distribution=distribution)
    history = keras_recipes.fine_tune(model, (images[:512], y[:512]),
                                      validation_data=(images[512:], y[512:]),
                                      head_epochs=3, epochs=6, batch_size=32, verbose=0,
                                      callbacks=callbacks)
    return model, history, images


def main(argv):
    result, backup = argv[0], argv[1]
    kill = int(argv[argv.index("--kill-in-epoch") + 1]) if "--kill-in-epoch" in argv else None
    kind = argv[argv.index("--kind") + 1] if "--kind" in argv else "default"
    distribution = _processes.join_processes()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(640, 10)).astype("float32")
    y = (x[:, 0] + 0.5 * rng.normal(size=640) > 0).astype("int64") + (x[:, 1] > 1)
    train = {"default": _default, "compile_recipe": _compile_recipe,
             "fine_tune": _fine_tune}[kind]
    model, history, *images = train(x, y, None if backup == "-" else backup, distribution,
                                    [] if kill is None else [KillInEpoch(kill)])
    x = images[0] if images else x
    test = model.evaluate(x[512:], y[512:], batch_size=32, verbose=0, return_dict=True)
    if _processes.is_writer():
        np.savez(result, *model.get_weights())
        with open(result + ".json", "w") as file:
            json.dump({"history": history.history, "epoch": history.epoch, "test": test,
                       "processes": _processes.count()}, file)


if __name__ == "__main__":
    main(sys.argv[1:])
