"""The recipes' execution defaults: several batches per compiled call, XLA, and
callbacks that still see every batch."""

import re

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes import optimizers
from keras_recipes.callbacks.one_cycle_span import OneCycleSpan
from keras_recipes.optimizers import learning_rate_schedule
from keras_recipes.recipe._fit_callbacks import watches_batches
from keras_recipes.schedules import OneCycle, OneCycleMomentum
from keras_recipes.training.recipe_model import set_peak_learning_rate

BACKEND = keras.backend.backend()
# These tests are about the execution defaults themselves (see conftest.py).
pytestmark = pytest.mark.real_execution_defaults


def _transfer(input_shape, num_classes, **kwargs):
    """`build_transfer_model` on a tiny convolutional base of the given input shape."""
    inputs = keras.Input(input_shape if len(input_shape) == 3 else (8, 8, 3))
    base = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs), name="tiny_base")
    return keras_recipes.build_transfer_model(base, num_classes, **kwargs)


_transfer.__name__ = "build_transfer_model"
FACTORIES = [keras_recipes.build_default_dnn, keras_recipes.build_self_normalizing_dnn,
             keras_recipes.get_recipe("baseline"), _transfer]


def _data(n=200):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 12)).astype("float32")
    return x, x[:, :3].argmax(axis=1).astype("int64")


class BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train_batches, self.test_batches = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.train_batches.append(batch)

    def on_test_batch_end(self, batch, logs=None):
        self.test_batches.append(batch)


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_factories_compile_with_the_fast_execution_defaults(factory):
    model = factory((12,), 3, seed=0)
    assert model.steps_per_execution == (1 if BACKEND == "torch" else 32)
    # Keras's own "auto" turns XLA off for TensorFlow on a CPU-only machine; the recipe
    # keeps it for dense networks, not for convolutional ones (the transfer model's base).
    convolutional = factory is _transfer
    assert model.jit_compile is {"tensorflow": not convolutional, "jax": True,
                                 "torch": False}[BACKEND]


def _convolutional(nested):
    inputs = keras.Input((8, 8, 3))
    if nested:  # a frozen base inside the model, as a keras.applications base is
        base = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.DepthwiseConv2D(3)])
        base.trainable = False
        features = base(inputs)
    else:
        features = keras.layers.SeparableConv2D(4, 3)(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))


@pytest.mark.parametrize("kind", ["dense", "recurrent", "convolutional", "nested convolutions"])
def test_xla_by_default_on_tensorflow_for_dense_and_recurrent_models_only(kind):
    # Measured (`bench_speed.py --only models`, see the README): XLA on a CPU speeds up the
    # MLP and the GRU, and slows the CNN and the MobileNetV2 transfer model.
    model = {"dense": lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]),
             "recurrent": lambda: keras.Sequential([keras.Input((5, 4)), keras.layers.GRU(3)]),
             "convolutional": lambda: _convolutional(nested=False),
             "nested convolutions": lambda: _convolutional(nested=True)}[kind]()
    compiled = keras_recipes.compile_recipe(model, loss="sparse_categorical_crossentropy")
    expected = {"tensorflow": kind in ("dense", "recurrent"), "jax": True, "torch": False}
    assert compiled.jit_compile is expected[BACKEND]
    mine = keras_recipes.compile_recipe(model, loss="sparse_categorical_crossentropy",
                                        jit_compile=BACKEND != "torch")
    assert mine.jit_compile is (BACKEND != "torch")  # a choice of yours is kept


def test_explicit_execution_settings_are_used():
    model = keras_recipes.build_default_dnn((12,), 3, steps_per_execution=1, jit_compile=False)
    assert (model.steps_per_execution, model.jit_compile) == (1, False)


@pytest.mark.train
@pytest.mark.skipif(BACKEND == "torch", reason="PyTorch runs one batch per call")
def test_several_batches_per_call_compute_the_same_training():
    """Same seeds and data: 32 batches per call ends with the same weights as 1."""
    x, y = _data()
    weights = []
    for steps_per_execution in (1, 32):
        keras.utils.set_random_seed(0)
        model = keras_recipes.build_default_dnn((12,), 3, dropout_rate=0.2, seed=0,
                                                steps_per_execution=steps_per_execution,
                                                jit_compile=False)
        model.fit(x, y, epochs=3, batch_size=32, validation_data=(x[:64], y[:64]), verbose=0)
        assert int(model.optimizer.iterations) == 3 * 7  # 200 samples: 7 batches an epoch
        weights.append(model.get_weights())
    for one, many in zip(*weights):
        np.testing.assert_allclose(many, one, rtol=1e-6, atol=1e-7)


@pytest.mark.train
@pytest.mark.skipif(BACKEND != "tensorflow", reason="XLA is a choice only on TensorFlow")
def test_xla_training_matches_plain_graphs():
    x, y = _data()
    losses = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(0)  # the same shuffled order of batches for both
        model = keras_recipes.build_default_dnn((12,), 3, seed=0, jit_compile=jit_compile)
        history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
        losses.append(history.history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


@pytest.mark.train
def test_a_per_batch_callback_sees_every_batch_and_the_next_fit_is_fast_again(monkeypatch):
    x, y = _data()
    model = keras_recipes.build_default_dnn((12,), 3, seed=0)
    fast = model.steps_per_execution
    counter = BatchCounter()
    model.fit(x, y, epochs=2, batch_size=32, validation_data=(x[:64], y[:64]),
              callbacks=[counter], verbose=0)
    assert counter.train_batches == list(range(7)) * 2
    assert counter.test_batches == list(range(2)) * 2
    assert model.steps_per_execution == fast

    # Keras reports the end of each compiled call: one call runs all 7 batches.
    ends = []
    original = keras.callbacks.CallbackList.on_train_batch_end
    monkeypatch.setattr(keras.callbacks.CallbackList, "on_train_batch_end",
                        lambda self, batch, logs=None: (ends.append(batch),
                                                        original(self, batch, logs)))
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert len(ends) == (7 if BACKEND == "torch" else 1)


@pytest.mark.train
def test_callbacks_may_come_as_a_callback_list():
    x, y = _data()
    model = keras_recipes.build_default_dnn((12,), 3, seed=0)
    counter = BatchCounter()
    model.fit(x, y, epochs=1, batch_size=32,
              callbacks=keras.callbacks.CallbackList([counter]), verbose=0)
    assert counter.train_batches == list(range(7))


@pytest.mark.parametrize("callback, expected", [
    (BatchCounter(), True),
    (keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: None), True),
    (keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: None), False),
    (keras.callbacks.TerminateOnNaN(), True),
    (keras.callbacks.BackupAndRestore("unused"), False),
    (keras.callbacks.BackupAndRestore("unused", save_freq=5), True),
    (keras.callbacks.ModelCheckpoint("unused.keras"), False),
    (keras.callbacks.EarlyStopping(), False),
], ids=lambda value: type(value).__name__ if isinstance(value, keras.callbacks.Callback) else "")
def test_which_callbacks_watch_batches(callback, expected):
    assert watches_batches(callback) is expected


@pytest.mark.parametrize("kwargs, error, message", [
    ({"steps_per_execution": 0}, ValueError,
     "Argument `steps_per_execution` must be a positive integer or \"auto\". "
     "Received: steps_per_execution=0"),
    ({"steps_per_execution": "fast"}, ValueError,
     "Argument `steps_per_execution` must be a positive integer or \"auto\". "
     "Received: steps_per_execution='fast'"),
    ({"steps_per_execution": 2.5}, TypeError,
     "Argument `steps_per_execution` must be a positive integer or \"auto\". "
     "Received: steps_per_execution=2.5"),
    ({"jit_compile": "yes"}, ValueError,
     "Argument `jit_compile` must be True, False or \"auto\". Received: jit_compile='yes'"),
    ({"jit_compile": 1}, TypeError,
     "Argument `jit_compile` must be True, False or \"auto\". Received: jit_compile=1"),
])
@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_bad_execution_settings_are_refused(kwargs, error, message, factory):
    with pytest.raises(error, match=re.escape(message)):
        factory((12,), 3, **kwargs)


@pytest.mark.skipif(BACKEND != "torch", reason="only PyTorch limits steps_per_execution")
def test_pytorch_refuses_several_batches_per_call_and_loads_models_that_had_them():
    with pytest.raises(ValueError, match=re.escape(
            "Argument `steps_per_execution` must be 1 or \"auto\". Received: "
            "steps_per_execution=32. Keras's PyTorch backend runs one batch per call")):
        keras_recipes.build_default_dnn((12,), 3, steps_per_execution=32)
    model = keras_recipes.build_default_dnn((12,), 3)
    config = model.get_compile_config()
    config["steps_per_execution"] = 32  # as saved by a TensorFlow or JAX run
    model.compile_from_config(config)
    assert model.steps_per_execution == 1
    model.fit(*_data(64), epochs=1, verbose=0)


@pytest.mark.train
@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute needs TensorFlow")
def test_a_tf_distribute_strategy_runs_one_batch_per_call_without_xla():
    """Keras 3.15's multi-step loop fails under tf.distribute, and Keras keeps XLA off there."""
    import tensorflow as tf

    model = keras_recipes.build_default_dnn((12,), 3, seed=0,
                                            distribution=tf.distribute.MirroredStrategy(["/cpu:0"]))
    assert (model.steps_per_execution, model.jit_compile) == (1, False)
    model.fit(*_data(64), epochs=1, verbose=0)
    # The 1cycle's state was made in the strategy's scope; a new span needs no retrace.
    function = model.train_function
    model.fit(*_data(64), epochs=2, verbose=0)
    assert model.train_function is function
    assert float(model.optimizer.learning_rate) == pytest.approx(
        learning_rate_schedule(model.optimizer).final_learning_rate, rel=1e-4)


@pytest.mark.train
def test_fine_tune_keeps_the_execution_settings_through_its_recompiles():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(64, 8, 8, 3)).astype("float32")
    labels = rng.integers(0, 3, size=64)
    model = _transfer((8, 8, 3), 3, seed=0)
    settings = (model.steps_per_execution, model.jit_compile)
    history = keras_recipes.fine_tune(model, (images, labels), head_epochs=1, epochs=1,
                                      verbose=0)
    assert history.history["phase"] == [1, 2]
    assert (model.steps_per_execution, model.jit_compile) == settings


def _count_builds(model):
    """Counts Python runs of `train_step` (traces, except on PyTorch, which runs it eagerly
    every batch) and the forced rebuilds of the train function."""
    traces, forced = [], []
    train_step, make_train_function = model.train_step, model.make_train_function

    def counted_step(*args, **kwargs):
        traces.append(1)
        return train_step(*args, **kwargs)

    def counted_make(force=False):
        forced.append(force)
        return make_train_function(force=force)

    model.train_step, model.make_train_function = counted_step, counted_make
    return traces, forced


@pytest.mark.train
@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="Keras traces twice only on TensorFlow (see BuildsBeforeTracing)")
@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_a_first_fit_traces_its_train_step_once(factory):
    """Keras on TensorFlow builds the optimizer and metrics inside the first trace of the
    step, so that `tf.function` traces it again; the recipe builds them first."""
    x, y = _data(192)
    if factory is _transfer:
        x = np.random.default_rng(0).normal(size=(192, 8, 8, 3)).astype("float32")
    model = factory(x.shape[1:], 3, seed=0)
    traces, _ = _count_builds(model)
    model.fit(x, y, epochs=2, batch_size=32, validation_data=(x[:64], y[:64]), verbose=0)
    assert len(traces) == 1


def _sgd_reference(x, y, w, learning_rates, momenta, batch_size, velocity):
    """Keras's SGD with momentum on a linear least-squares model, in float64 numpy."""
    for step, start in enumerate(range(0, len(x), batch_size)):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        grad = 2 * xb.T @ (xb @ w - yb) / yb.size
        velocity = momenta[step] * velocity - learning_rates[step] * grad
        w = w + velocity
    return w, velocity


def _values(schedule, steps):
    return keras.ops.convert_to_numpy(schedule(keras.ops.convert_to_tensor(steps)))


@pytest.mark.train
def test_a_new_fit_on_a_1cycle_model_retraces_nothing_and_runs_a_whole_new_cycle():
    """The span (and the peak the LR finder sets) are state the compiled step reads."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 2))).astype("float32")
    w0 = rng.normal(size=(4, 2)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, use_bias=False)])
    model.set_weights([w0])
    model.compile(optimizer=optimizers.SGD(OneCycle(0.05, 100), momentum=OneCycleMomentum(100)),
                  loss="mse", steps_per_execution=1 if BACKEND == "torch" else 4,
                  jit_compile=BACKEND != "torch")
    traces, forced = _count_builds(model)
    fit = dict(batch_size=4, shuffle=False, verbose=0)
    model.fit(x, y, epochs=1, callbacks=[OneCycleSpan()], **fit)  # 12 steps
    function, traced = model.train_function, len(traces)
    assert set_peak_learning_rate(model.optimizer, 0.02) is False  # nothing to rebuild
    model.fit(x, y, epochs=2, callbacks=[OneCycleSpan()], **fit)  # a new cycle: 24 steps
    assert model.train_function is function and True not in forced
    if BACKEND != "torch":
        assert len(traces) == traced
    # Step for step the rates and momenta of the two cycles, computed apart.
    first = np.arange(12)
    second = np.arange(12, 36)
    cycles = [(OneCycle(0.05, 12), OneCycleMomentum(12), first),
              (OneCycle(0.02, 24, start_step=12), OneCycleMomentum(24, start_step=12), second)]
    w, velocity = w0.astype("float64"), np.zeros((4, 2))
    for learning_rate, momentum, steps in cycles:
        data = np.concatenate([x] * (len(steps) // 12)).astype("float64")
        labels = np.concatenate([y] * (len(steps) // 12))
        w, velocity = _sgd_reference(data, labels, w, _values(learning_rate, steps),
                                     _values(momentum, steps), 4, velocity)
    np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-4, atol=1e-5)
    # Baked in, the first cycle would have held its final rate: almost no training.
    held, _ = _sgd_reference(np.concatenate([x] * 2).astype("float64"), np.concatenate([y] * 2),
                             w0.astype("float64"), np.full(24, 0.05 / 25 / 1e4),
                             np.full(24, 0.95), 4, np.zeros((4, 2)))
    assert np.abs(w - held).max() > 1e-2


@pytest.mark.train
def test_a_recipe_model_fits_again_without_rebuilding_its_train_function():
    x, y = _data()
    model = keras_recipes.build_default_dnn((12,), 3, seed=0)
    traces, forced = _count_builds(model)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    function, traced = model.train_function, len(traces)
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert model.train_function is function and True not in forced
    if BACKEND != "torch":
        assert len(traces) == traced
    schedule = learning_rate_schedule(model.optimizer)
    assert (schedule.total_steps, schedule.start_step) == (3 * 7, 2 * 7)
    assert float(model.optimizer.learning_rate) == pytest.approx(schedule.final_learning_rate,
                                                                 rel=1e-4)
    assert float(model.optimizer.beta_1) == pytest.approx(0.95)
