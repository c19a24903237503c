"""Tests of keras_recipes.callbacks.TrainingMonitor."""

import glob
import os
import re
import warnings

import keras
import numpy as np
import pytest

from keras_recipes.callbacks import TrainingMonitor, TrainingMonitorWarning
from keras_recipes.diagnostics import symptoms
from keras_recipes.diagnostics._measure import measure

L = keras.layers


def _data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = np.argmax(x[:, :3], axis=1).astype("int32")
    return x, y


def _model(initializer="he_normal", activation="relu", seed=0, batch_norm=False,
           seeded_dropout=True):
    layers = [keras.Input((8,))]
    for i in range(3):
        init = initializer
        if isinstance(init, str):
            init = keras.initializers.get({"class_name": init, "config": {"seed": seed + i}})
        if batch_norm:
            layers += [L.Dense(16, use_bias=False, kernel_initializer=init),
                       L.BatchNormalization(), L.Activation(activation),
                       L.Dropout(0.2, seed=seed + i if seeded_dropout else None)]
        else:
            layers.append(L.Dense(16, activation=activation, kernel_initializer=init))
    layers.append(L.Dense(3, activation="softmax",
                          kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 9)))
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def _fit(model, monitor=None, epochs=3, x=None, y=None):
    if x is None:
        x, y = _data()
    callbacks = [] if monitor is None else [monitor]
    return model.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0,
                     callbacks=callbacks)


@pytest.mark.train
def test_the_epoch_line_stays_short_and_the_history_keeps_every_statistic(capsys):
    x, y = _data()
    model = _model()
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=2,
                        callbacks=[TrainingMonitor(x[:64], y[:64], seed=0, verbose=1)])
    printed = capsys.readouterr().out
    assert "monitor_" not in printed
    epoch_lines = [line for line in printed.splitlines() if "loss:" in line]
    assert len(epoch_lines) == 2 and all(len(line) < 100 for line in epoch_lines), printed
    assert printed.count("TrainingMonitor epoch ") == 2  # the short summary line
    monitored = [key for key in history.history if key.startswith("monitor_")]
    assert len(monitored) > 15 and all(len(history.history[k]) == 2 for k in monitored)


@pytest.mark.train
def test_statistics_are_logged_into_the_history():
    x, y = _data()
    model = _model()
    monitor = TrainingMonitor(x[:64], y[:64], seed=0)
    history = _fit(model, monitor)
    summary = ["monitor_max_dead_fraction", "monitor_max_saturated_fraction",
               "monitor_max_gradient_norm", "monitor_gradient_norm_ratio", "monitor_nonfinite"]
    for key in summary:
        assert len(history.history[key]) == 3
    first = model.layers[0].name
    for stat in ("mean", "std", "dead_fraction", "gradient_norm"):
        assert len(history.history[f"monitor_{first}_{stat}"]) == 3
    assert f"monitor_{first}_saturated_fraction" not in history.history  # ReLU: not defined
    assert [record["epoch"] for record in monitor.records] == [0, 1, 2]


@pytest.mark.train
def test_logged_values_equal_what_diagnose_measures():
    """The last epoch's logs equal a measurement of the final model on the probe batches."""
    x, y = _data()
    model = _model()
    monitor = TrainingMonitor(x[:64], y[:64], seed=0)
    history = _fit(model, monitor)
    measurement = measure(model, monitor._batches)
    stats, ratio = measurement.layers, measurement.gradient_norm_ratio
    for s in stats:
        assert history.history[f"monitor_{s.layer}_std"][-1] == pytest.approx(s.std, rel=1e-6)
        assert history.history[f"monitor_{s.layer}_gradient_norm"][-1] == pytest.approx(
            s.gradient_norm, rel=1e-5)
    assert history.history["monitor_gradient_norm_ratio"][-1] == pytest.approx(ratio, rel=1e-5)
    assert history.history["monitor_max_gradient_norm"][-1] == pytest.approx(
        max(s.gradient_norm for s in stats), rel=1e-5)
    # The statistics really change as the model trains.
    assert history.history["monitor_max_gradient_norm"][0] != history.history[
        "monitor_max_gradient_norm"][-1]


@pytest.mark.train
def test_monitoring_does_not_change_training():
    """BatchNorm statistics and dropout seeds are restored: same weights with or without it."""
    x, y = _data()
    with_monitor = _model(batch_norm=True)
    without = _model(batch_norm=True)
    for a, b in zip(with_monitor.variables, without.variables):
        b.assign(a.numpy())  # a copy: on JAX, fit donates (deletes) the buffers it was given
    _fit(with_monitor, TrainingMonitor(x[:32], y[:32], num_batches=1))
    _fit(without)
    for a, b in zip(with_monitor.variables, without.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.train
def test_monitoring_does_not_change_training_with_unseeded_dropout():
    """On PyTorch unseeded Dropout draws from torch's global generator; it is restored."""
    x, y = _data()
    with_monitor = _model(batch_norm=True, seeded_dropout=False)
    without = _model(batch_norm=True, seeded_dropout=False)
    for a, b in zip(with_monitor.variables, without.variables):
        b.assign(a.numpy())
    keras.utils.set_random_seed(2)
    _fit(with_monitor, TrainingMonitor(x[:32], y[:32], num_batches=1))
    keras.utils.set_random_seed(2)
    _fit(without)
    for a, b in zip(with_monitor.variables, without.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.train
def test_every_n_epochs():
    x, y = _data()
    monitor = TrainingMonitor(x[:32], y[:32], every_n_epochs=2, log_layers=False)
    history = _fit(_model(), monitor, epochs=5)
    assert [record["epoch"] for record in monitor.records] == [1, 3]
    assert len(history.history["monitor_max_dead_fraction"]) == 2
    assert len(history.history["loss"]) == 5
    assert not any(key.startswith(f"monitor_{_model().layers[0].name}") for key in history.history)


@pytest.mark.train
def test_warns_as_soon_as_a_layer_dies():
    x, y = _data()
    x = np.abs(x)
    model = _model(initializer=keras.initializers.RandomUniform(-1.0, 0.0, seed=0))
    monitor = TrainingMonitor(x[:64], y[:64])
    with pytest.warns(TrainingMonitorWarning) as record:
        _fit(model, monitor, x=x, y=y)
    messages = [str(w.message) for w in record if w.category is TrainingMonitorWarning]
    died = [m for m in messages if "died" in m]
    # One warning per dead layer, at the first epoch, not repeated later.
    assert len(died) == 3
    assert all(m.startswith("TrainingMonitor, epoch 1: layer") for m in died)
    assert "He initialization" in died[0]
    assert symptoms.DYING_RELU.fix in died[0]  # the fix text of diagnose's symptom table


@pytest.mark.train
def test_warns_when_gradients_explode():
    x, y = _data()
    model = _model(initializer=keras.initializers.RandomNormal(stddev=10.0, seed=0))
    with pytest.warns(TrainingMonitorWarning, match=re.escape("gradients explode")) as record:
        _fit(model, TrainingMonitor(x[:64], y[:64]), epochs=1)
    exploding = [str(w.message) for w in record if "gradients explode" in str(w.message)]
    assert all(symptoms.EXPLODING_GRADIENTS.fix in m for m in exploding)


def test_thresholds_default_to_those_of_diagnose():
    x, y = _data()
    monitor = TrainingMonitor(x[:32], y[:32])
    assert monitor.dead_fraction_threshold == symptoms.DEAD_FRACTION_THRESHOLD
    assert monitor.gradient_norm_threshold == symptoms.EXPLODING_GRADIENT_NORM
    assert monitor.gradient_ratio_threshold == symptoms.EXPLODING_GRADIENT_RATIO


@pytest.mark.train
def test_healthy_training_does_not_warn():
    x, y = _data()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # local to this block
        _fit(_model(), TrainingMonitor(x[:64], y[:64]))
    assert not [w for w in record if w.category is TrainingMonitorWarning]


@pytest.mark.train
def test_thresholds_are_configurable():
    x, y = _data()
    monitor = TrainingMonitor(x[:64], y[:64], gradient_norm_threshold=1e-6)
    with pytest.warns(TrainingMonitorWarning, match=re.escape("> 1e-06")):
        _fit(_model(), monitor, epochs=1)


@pytest.mark.train
def test_writes_tensorboard_scalars(tmp_path):
    import tensorflow as tf

    x, y = _data()
    model = _model()
    monitor = TrainingMonitor(x[:32], y[:32], log_dir=str(tmp_path))
    _fit(model, monitor, epochs=2)
    files = glob.glob(os.path.join(tmp_path, "monitor", "events.out.tfevents.*"))
    assert files
    tags = {}
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars"
                number = float(tf.make_ndarray(value.tensor))
                tags.setdefault(value.tag, []).append((event.step, number))
    expected = [(r["epoch"], r["max_gradient_norm"]) for r in monitor.records]
    assert [step for step, _ in tags["monitor/max_gradient_norm"]] == [0, 1]
    np.testing.assert_allclose(tags["monitor/max_gradient_norm"], expected, rtol=1e-6)
    dead = [(r["epoch"], r["layers"][0].dead_fraction) for r in monitor.records]
    np.testing.assert_allclose(tags[f"{model.layers[0].name}/dead_fraction"], dead, rtol=1e-6)


@pytest.mark.train
def test_works_with_a_tf_dataset():
    import tensorflow as tf

    x, y = _data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    monitor = TrainingMonitor(dataset, num_batches=2)
    history = _fit(_model(), monitor, epochs=1)
    assert len(history.history["monitor_max_gradient_norm"]) == 1


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"every_n_epochs": 0}, ValueError,
         "Argument `every_n_epochs` must be a positive integer. Received: every_n_epochs=0"),
        ({"dead_fraction_threshold": 0.0}, ValueError,
         "Argument `dead_fraction_threshold` must be in the range (0, 1]. "
         "Received: dead_fraction_threshold=0.0"),
        ({"gradient_ratio_threshold": 1}, ValueError,
         "Argument `gradient_ratio_threshold` must be a number > 1. "
         "Received: gradient_ratio_threshold=1.0"),
        ({"log_dir": 3}, TypeError,
         "Argument `log_dir` must be a path (str or os.PathLike) or None. Received: log_dir=3"),
        ({"log_layers": 1}, TypeError,
         "Argument `log_layers` must be a bool (True or False). Received: log_layers=1"),
        ({"seed": -1}, ValueError,
         "Argument `seed` must be a non-negative integer or None. Received: seed=-1"),
        ({"verbose": "loud"}, ValueError,
         'Argument `verbose` must be 0 (silent), 1, 2 or "auto". Received: verbose=\'loud\''),
    ],
)
def test_bad_arguments(kwargs, error, message):
    x, y = _data()
    with pytest.raises(error, match=re.escape(message)):
        TrainingMonitor(x, y, **kwargs)


def test_bad_data():
    with pytest.raises(TypeError, match=re.escape("Argument `x` must be a numpy array")):
        TrainingMonitor("data.csv")
