"""EpochTensorBoard (#26): each epoch's losses, metrics, learning rate and momentum as
TensorBoard scalars, epoch-level so that recipe models keep several batches per call."""

import glob
import os
import re
import sys

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes.callbacks import EpochTensorBoard
from keras_recipes.callbacks.epoch_tensorboard import optimizer_scalars
from keras_recipes.optimizers import learning_rate_schedule
from keras_recipes.optimizers.scheduled import raw_hyperparameter
from keras_recipes.recipe._fit_callbacks import watches_batches

BACKEND = keras.backend.backend()


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype("float32")
    return x, x[:, :3].argmax(axis=1).astype("int64")


def _scalars(log_dir, run):
    """`{tag: [(step, value), ...]}` of every event file of `log_dir/run`."""
    tf = pytest.importorskip("tensorflow")
    found = {}
    for path in sorted(glob.glob(os.path.join(log_dir, run, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor))))
    return found


@pytest.mark.train
def test_losses_metrics_and_the_one_cycles_rate_and_momentum_of_each_epoch(tmp_path):
    """Golden values: the logs of each epoch as the History has them, and the 1cycle's
    learning rate and beta_1 at the step each epoch ended (7 batches an epoch)."""
    x, y = _data()
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=1, seed=0)
    history = model.fit(x, y, epochs=3, batch_size=32, validation_data=(x[:64], y[:64]),
                        verbose=0, callbacks=[EpochTensorBoard(tmp_path)])
    train, validation = _scalars(tmp_path, "train"), _scalars(tmp_path, "validation")
    assert sorted(train) == ["epoch_accuracy", "epoch_beta_1", "epoch_learning_rate",
                             "epoch_loss"]
    assert sorted(validation) == ["epoch_accuracy", "epoch_loss"]
    for tag, key in (("epoch_loss", "loss"), ("epoch_accuracy", "accuracy")):
        assert [step for step, _ in train[tag]] == [0, 1, 2]
        np.testing.assert_allclose([value for _, value in train[tag]], history.history[key],
                                   rtol=1e-6)
        np.testing.assert_allclose([value for _, value in validation[tag]],
                                   history.history[f"val_{key}"], rtol=1e-6)
    rate = learning_rate_schedule(model.optimizer)
    momentum = raw_hyperparameter(model.optimizer, "beta_1")
    steps = [7 * (epoch + 1) for epoch in range(3)]
    np.testing.assert_allclose([value for _, value in train["epoch_learning_rate"]],
                               [float(rate(step)) for step in steps], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose([value for _, value in train["epoch_beta_1"]],
                               [float(momentum(step)) for step in steps], rtol=1e-6)
    # The 1cycle's shape: the rate falls after its peak while beta_1 climbs back.
    rates = [value for _, value in train["epoch_learning_rate"]]
    betas = [value for _, value in train["epoch_beta_1"]]
    assert rates[0] > rates[1] > rates[2] and betas[0] < betas[1] < betas[2]


@pytest.mark.train
def test_a_recipe_model_keeps_running_all_batches_of_an_epoch_in_one_call(tmp_path,
                                                                         monkeypatch):
    """The effect that matters for speed: no batch hook, so the recipe does not fall back
    to one batch per compiled call (Keras reports the end of each call)."""
    x, y = _data()
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=1, seed=0)
    callback = EpochTensorBoard(tmp_path)
    assert not watches_batches(callback)
    ends = []
    original = keras.callbacks.CallbackList.on_train_batch_end
    monkeypatch.setattr(keras.callbacks.CallbackList, "on_train_batch_end",
                        lambda self, batch, logs=None: (ends.append(batch),
                                                        original(self, batch, logs)))
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[callback])
    assert len(ends) == (14 if BACKEND == "torch" else 2)  # PyTorch: one batch per call
    assert [step for step, _ in _scalars(tmp_path, "train")["epoch_loss"]] == [0, 1]


def test_keras_tensorboard_at_epoch_frequency_does_not_watch_batches():
    assert not watches_batches(keras.callbacks.TensorBoard("unused"))
    assert not watches_batches(keras.callbacks.TensorBoard("unused", update_freq="epoch",
                                                           write_steps_per_second=True))
    assert watches_batches(keras.callbacks.TensorBoard("unused", update_freq="batch"))
    assert watches_batches(keras.callbacks.TensorBoard("unused", update_freq=10))


@pytest.mark.skipif(BACKEND != "tensorflow" and not (BACKEND == "jax"
                                                      and sys.version_info >= (3, 12)),
                    reason="Keras profiles only on TensorFlow, and JAX with Python >= 3.12")
def test_keras_tensorboard_profiling_batches_watches_them():
    assert watches_batches(keras.callbacks.TensorBoard("unused", profile_batch=2))


@pytest.mark.train
def test_fits_one_after_the_other_continue_the_steps(tmp_path):
    x, y = _data(n=64)
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=1, seed=0,
                                            schedule="constant", learning_rate=1e-3)
    callback = EpochTensorBoard(tmp_path)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])  # fine_tune's phase 2 does so
    model.fit(x, y, epochs=6, initial_epoch=4, verbose=0, callbacks=[callback])  # its own
    steps = [step for step, _ in _scalars(tmp_path, "train")["epoch_loss"]]
    assert steps == [0, 1, 2, 3, 4, 5]
    assert [value for _, value in _scalars(tmp_path, "train")["epoch_learning_rate"]] == \
        pytest.approx([1e-3] * 6)


@pytest.mark.parametrize("optimizer, expected", [
    (lambda: keras.optimizers.SGD(0.1, momentum=0.9), {"learning_rate": 0.1, "momentum": 0.9}),
    (lambda: keras.optimizers.Adam(0.01, beta_1=0.85),
     {"learning_rate": 0.01, "beta_1": 0.85}),
    (lambda: keras.optimizers.RMSprop(0.001, momentum=0.5),
     {"learning_rate": 0.001, "momentum": 0.5}),
    (lambda: keras.optimizers.Adagrad(0.05), {"learning_rate": 0.05}),
    (lambda: keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.2, momentum=0.8)),
     {"learning_rate": 0.2, "momentum": 0.8}),
], ids=["sgd", "adam", "rmsprop", "adagrad", "loss_scale"])
def test_optimizer_scalars_name_each_optimizers_momentum(optimizer, expected):
    assert optimizer_scalars(optimizer()) == pytest.approx(expected)


@pytest.mark.skipif(not hasattr(keras.optimizers, "MultiOptimizer"),
                    reason="keras.optimizers.MultiOptimizer needs Keras >= 3.15")
def test_optimizer_scalars_of_a_multi_optimizer_are_named_after_each_optimizer():
    head = keras.optimizers.Adam(1e-2, beta_1=0.9, name="head")
    base = keras.optimizers.SGD(1e-4, momentum=0.5, name="base")
    optimizer_map = keras.optimizers.OptimizerMap(head)
    optimizer_map["base/.*"] = base
    multi = keras.optimizers.MultiOptimizer(optimizer_map)
    assert optimizer_scalars(multi) == pytest.approx({
        "learning_rate_base": 1e-4, "momentum_base": 0.5,
        "learning_rate_head": 1e-2, "beta_1_head": 0.9})


def test_log_dir_must_be_a_path():
    with pytest.raises(TypeError, match=re.escape(
            "Argument `log_dir` must be a folder path (str or os.PathLike). Received: "
            "log_dir=3")):
        EpochTensorBoard(3)


def test_without_tensorflow_the_start_of_fit_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(ImportError, match=re.escape(
            f"EpochTensorBoard({str(tmp_path)!r}): TensorBoard event files are written with "
            "TensorFlow's tf.summary, and TensorFlow is not installed (pip install "
            "tensorflow).")):
        EpochTensorBoard(tmp_path).on_train_begin()
