"""`normalization="batch" | "layer" | "group" | None` of build_default_dnn (#26): the layers it
builds, `normalization_groups`, the deprecated `batch_norm`, the self-normalizing guard, and
the small-batch advice of `diagnose` and `TrainingMonitor`."""

import re
import warnings

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes.callbacks import TrainingMonitor, TrainingMonitorWarning
from keras_recipes.diagnostics import diagnose

L = keras.layers

NORM_CLASSES = {"batch": L.BatchNormalization, "layer": L.LayerNormalization,
                "group": L.GroupNormalization}


def _dnn(**kwargs):
    return keras_recipes.build_default_dnn((12,), 3, **{"num_hidden_layers": 2, "units": 32,
                                                        "seed": 0, **kwargs})


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype("float32")
    return x, x[:, :3].argmax(axis=1).astype("int64")


def _hidden(model, x, index=1):
    """The output of hidden block `index`'s normalization layer, in training mode."""
    norm = [layer for layer in model.layers if isinstance(layer, tuple(NORM_CLASSES.values()))]
    probe = keras.Model(model.inputs, norm[index - 1].output)
    return lambda inputs: keras.ops.convert_to_numpy(probe(inputs, training=True))


# --- the layers ------------------------------------------------------------------------------


@pytest.mark.parametrize("normalization, name", [("batch", "batch_norm"),
                                                 ("layer", "layer_norm"),
                                                 ("group", "group_norm")])
def test_each_normalization_sits_between_a_biasless_dense_and_the_activation(normalization,
                                                                            name):
    model = _dnn(normalization=normalization)
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    norm = NORM_CLASSES[normalization].__name__
    assert kinds == ["Dense", norm, "Activation"] * 2 + ["Dense"]
    assert [layer.name for layer in model.layers if type(layer).__name__ == norm] == [
        f"{name}_1", f"{name}_2"]
    assert not model.get_layer("hidden_1").use_bias


def test_no_normalization_gives_the_dense_layers_their_bias_back():
    model = _dnn(normalization=None)
    assert [type(layer).__name__ for layer in model.layers[1:]] == [
        "Dense", "Activation"] * 2 + ["Dense"]
    assert model.get_layer("hidden_1").use_bias


def test_batch_normalization_is_the_default():
    assert isinstance(_dnn().get_layer("batch_norm_1"), L.BatchNormalization)


@pytest.mark.parametrize("units, groups", [(100, 5), (256, 16), (1024, 32), (64, 4), (32, 2),
                                           (16, 1), (7, 1)])
def test_auto_groups_are_the_most_up_to_32_of_at_least_16_units(units, groups):
    model = keras_recipes.build_default_dnn((12,), 3, num_hidden_layers=1, units=units,
                                            normalization="group")
    assert model.get_layer("group_norm_1").groups == groups


def test_given_groups_are_used():
    model = _dnn(normalization="group", normalization_groups=8)
    assert model.get_layer("group_norm_1").groups == 8


def test_layer_norm_standardises_each_sample_and_group_norm_each_group():
    """Closed form: at initialisation (gamma 1, beta 0) LayerNorm's output has mean 0 and
    variance 1 over each sample's units, GroupNorm's over each group of them."""
    x, _ = _data()
    layer = _hidden(_dnn(normalization="layer"), x)(x)
    np.testing.assert_allclose(layer.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(layer.var(axis=1), 1, atol=1e-2)
    group = _hidden(_dnn(normalization="group", normalization_groups=4), x)(x)
    by_group = group.reshape(len(x), 4, 8)
    np.testing.assert_allclose(by_group.mean(axis=2), 0, atol=1e-5)
    np.testing.assert_allclose(by_group.var(axis=2), 1, atol=2e-2)


@pytest.mark.parametrize("normalization", ["layer", "group"])
def test_layer_and_group_norm_do_not_depend_on_the_batch_where_batch_norm_does(normalization):
    """The effect that makes them the choice for small batches: in training mode a sample's
    output is the same alone as in a batch with others."""
    x, _ = _data()
    per_sample = _hidden(_dnn(normalization=normalization), x)
    np.testing.assert_allclose(per_sample(x[:1]), per_sample(x)[:1], atol=1e-5)
    batch = _hidden(_dnn(normalization="batch"), x)
    assert np.max(np.abs(batch(x[:2])[:1] - batch(x)[:1])) > 0.1


@pytest.mark.parametrize("normalization", ["layer", "group"])
def test_model_with_each_normalization_round_trips_through_a_keras_file(normalization, tmp_path):
    x, y = _data()
    model = _dnn(normalization=normalization, normalization_groups=(
        4 if normalization == "group" else "auto"))
    # Moved off the initial gamma/beta, so that the round trip has something to keep.
    for layer in model.layers:
        if isinstance(layer, (L.LayerNormalization, L.GroupNormalization)):
            layer.gamma.assign(np.linspace(0.5, 1.5, layer.gamma.shape[0]))
            layer.beta.assign(np.linspace(-0.2, 0.2, layer.beta.shape[0]))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    if normalization == "group":
        assert loaded.get_layer("group_norm_1").groups == 4


@pytest.mark.train
@pytest.mark.parametrize("normalization", ["layer", "group"])
def test_layer_and_group_norm_train_with_batches_of_four(normalization):
    x, y = _data(n=128)
    model = _dnn(normalization=normalization, learning_rate=3e-3)
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.8


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(normalization="instance"), ValueError,
     "Argument `normalization` must be one of 'batch', 'layer', 'group'. Received: "
     "normalization='instance'"),
    (dict(normalization=True), TypeError,
     "Argument `normalization` must be one of 'batch', 'layer', 'group'. Received: "
     "normalization=True"),
    (dict(normalization="group", normalization_groups=5), ValueError,
     "Argument `normalization_groups` must be a divisor of `units` (32) leaving at least 2 "
     "units per group. Received: normalization_groups=5 (GroupNormalization splits"),
    (dict(normalization="group", normalization_groups=32), ValueError,
     "Argument `normalization_groups` must be a divisor of `units` (32) leaving at least 2 "
     "units per group. Received: normalization_groups=32"),
    (dict(normalization="group", normalization_groups=2.0), TypeError,
     "Argument `normalization_groups` must be a positive integer. Received: "
     "normalization_groups=2.0"),
    (dict(normalization="layer", normalization_groups=4), ValueError,
     'Argument `normalization_groups` must be "auto" unless normalization="group". '
     "Received: normalization_groups=4 (the groups of GroupNormalization; "
     "normalization='layer')"),
])
def test_bad_normalization_arguments_are_explained(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        _dnn(**kwargs)


# --- the deprecated batch_norm -----------------------------------------------------------------


@pytest.mark.parametrize("batch_norm, normalization, kind", [
    (True, "batch", L.BatchNormalization), (False, "batch", None), (False, None, None)])
def test_batch_norm_still_works_with_a_deprecation_warning(batch_norm, normalization, kind):
    with pytest.warns(DeprecationWarning, match=re.escape(
            f"`batch_norm` is deprecated: pass normalization={'batch' if batch_norm else None!r}"
            f" (for batch_norm={batch_norm})")) as caught:
        model = _dnn(batch_norm=batch_norm, normalization=normalization)
    assert caught[0].filename == __file__  # points at the caller's code
    norms = [layer for layer in model.layers if isinstance(layer, L.BatchNormalization)]
    assert bool(norms) == (kind is not None)
    assert model.get_layer("hidden_1").use_bias == (kind is None)


def test_no_deprecation_warning_without_batch_norm():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        _dnn(normalization="layer")


@pytest.mark.parametrize("batch_norm, normalization", [
    (True, "layer"), (True, None), (False, "group"), (True, "group")])
def test_batch_norm_contradicting_normalization_is_refused(batch_norm, normalization):
    message = (f"Argument `batch_norm` must be left out when `normalization={normalization!r}`."
               f" Received: batch_norm={batch_norm} (`batch_norm` is the deprecated form of "
               '`normalization`: True is normalization="batch", False is normalization=None)')
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match=re.escape(message)):
        _dnn(batch_norm=batch_norm, normalization=normalization)


def test_batch_norm_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match=re.escape(
            "Argument `batch_norm` must be a bool (True or False). Received: batch_norm=1")):
        _dnn(batch_norm=1)


# --- self-normalizing ----------------------------------------------------------------------


@pytest.mark.parametrize("normalization", ["batch", "layer", "group"])
def test_self_normalizing_refuses_every_normalization_with_its_reason(normalization):
    with pytest.raises(ValueError, match=re.escape(
            "Argument `normalization` must be None in a self-normalizing network. Received: "
            f"normalization={normalization!r} (a self-normalizing network normalises itself; "
            "a BatchNormalization, LayerNormalization or GroupNormalization layer is "
            "redundant, and rescaling between layers moves activations off SELU's fixed "
            "point). Use `build_default_dnn` for other choices")):
        keras_recipes.build_self_normalizing_dnn((12,), 3, normalization=normalization)


def test_self_normalizing_keeps_its_batch_norm_guard():
    with pytest.raises(ValueError, match=re.escape(
            "Argument `batch_norm` must be False in a self-normalizing network. Received: "
            "batch_norm=True (a self-normalizing network normalises itself")):
        keras_recipes.build_self_normalizing_dnn((12,), 3, batch_norm=True)


# --- the small-batch advice ------------------------------------------------------------------


def test_diagnose_advises_layer_or_group_norm_under_batch_size_8():
    model = _dnn()
    finding = diagnose(model, batch_size=4).by_rule("unstable_batch_normalization")[0]
    assert finding.message == "BatchNormalization with batches of 4"
    assert finding.evidence == {"batch_size": 4}
    assert finding.fix.startswith("Replace BatchNormalization by LayerNormalization or "
                                  "GroupNormalization")
    assert 'normalization="layer" or normalization="group"' in finding.fix
    # 8 to 15: the batch is small but the first advice is a larger one.
    between = diagnose(model, batch_size=12).by_rule("unstable_batch_normalization")[0]
    assert between.fix.startswith("Train with batches of 16 or more")
    assert "unstable_batch_normalization" not in diagnose(model).rules  # 32 by default
    assert "unstable_batch_normalization" not in diagnose(_dnn(normalization="layer"),
                                                          batch_size=4).rules


def test_diagnose_with_data_reads_the_batch_size_of_the_batches():
    x, y = _data()
    report = diagnose(_dnn(), x, y, batch_size=4, num_steps=0, seed=0)
    finding = report.by_rule("unstable_batch_normalization")[0]
    assert finding.evidence == {"batch_size": 4}
    assert "LayerNormalization or GroupNormalization" in finding.fix


def _monitored_fit(model, batch_size, **monitor_kwargs):
    x, y = _data(n=32)
    monitor = TrainingMonitor(x, y, num_batches=1, seed=0, **monitor_kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingMonitorWarning)
        model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0, callbacks=[monitor])
    return monitor, [str(w.message) for w in caught if w.category is TrainingMonitorWarning]


@pytest.mark.train
def test_training_monitor_sees_the_batch_size_of_a_recipe_models_fit():
    monitor, messages = _monitored_fit(_dnn(num_hidden_layers=1), batch_size=4)
    assert monitor.fit_batch_size == 4
    small = [m for m in messages if "BatchNormalization with batches of 4" in m]
    assert len(small) == 1 and "LayerNormalization or GroupNormalization" in small[0]
    # (At 32, or without BatchNorm, `batch_normalization_finding` says nothing: tested above
    # through diagnose, which shares it.)


@pytest.mark.train
def test_training_monitor_takes_the_batch_size_of_another_models_fit():
    def plain():
        inputs = keras.Input((12,))
        h = L.Activation("relu")(L.BatchNormalization()(L.Dense(8, use_bias=False)(inputs)))
        model = keras.Model(inputs, L.Dense(3, activation="softmax")(h))
        model.compile("adam", "sparse_categorical_crossentropy")
        return model

    _, messages = _monitored_fit(plain(), batch_size=4)  # Keras does not say: no advice
    assert not [m for m in messages if "BatchNormalization with batches" in m]
    _, messages = _monitored_fit(plain(), batch_size=4, fit_batch_size=4)
    assert [m for m in messages if "BatchNormalization with batches of 4" in m]


def test_training_monitor_refuses_a_bad_fit_batch_size():
    x, y = _data()
    with pytest.raises(ValueError, match=re.escape(
            "Argument `fit_batch_size` must be a positive integer or None. Received: "
            "fit_batch_size=0")):
        TrainingMonitor(x, y, fit_batch_size=0)


def test_fit_batch_size_of_arrays_and_datasets():
    import tensorflow as tf

    from keras_recipes._batches import fit_batch_size

    x, y = _data()
    assert fit_batch_size(x, 4) == 4
    assert fit_batch_size(x, None) == 32  # Keras's default for arrays
    assert fit_batch_size(tf.data.Dataset.from_tensor_slices((x, y)).batch(
        8, drop_remainder=True), None) == 8
    assert fit_batch_size(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), None) is None
