"""MCDropoutPredictor and the calibration helpers."""

import math
import re

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes import _keras_internals as ki
from keras_recipes.layers import MCAlphaDropout, MCDropout
from keras_recipes.uncertainty import (
    MCDropoutPredictor,
    MCDropoutResult,
    expected_calibration_error,
    mc_statistics,
    reliability_diagram,
)

layers = keras.layers


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _x(n=12, d=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype("float32")


def bn_dropout_model(rate=0.3, num_classes=3, seed=0, dropout=layers.Dropout):
    """Dense -> BN -> ELU -> dropout -> Dense -> BN -> dropout -> softmax, with
    non-trivial BatchNorm statistics."""
    init = keras.initializers.GlorotNormal
    inputs = keras.Input((6,))
    x = layers.Dense(16, kernel_initializer=init(seed), name="d1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.Activation("elu")(x)
    x = dropout(rate, seed=seed, name="drop1")(x)
    x = layers.Dense(16, kernel_initializer=init(seed + 1), name="d2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = dropout(rate, seed=seed + 1, name="drop2")(x)
    outputs = layers.Dense(num_classes, activation="softmax",
                           kernel_initializer=init(seed + 2), name="out")(x)
    model = keras.Model(inputs, outputs)
    _set_bn_statistics(model)
    return model


def _set_bn_statistics(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in ki.flatten_layers(model):
        if isinstance(layer, layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0.5, 0.3, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.2, n).astype("float32"))


def transfer_model(rate=0.5, seed=0):
    """A frozen conv base with BatchNorm called with training=False + a dropout head."""
    images = keras.Input((8, 8, 2))
    x = layers.Conv2D(4, 3, padding="same", use_bias=False,
                      kernel_initializer=keras.initializers.HeNormal(seed))(images)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    base = keras.Model(images, x, name="base")
    _set_bn_statistics(base)
    base.trainable = False
    inputs = keras.Input((8, 8, 2))
    h = base(inputs, training=False)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(rate, seed=seed, name="head_dropout")(h)
    outputs = layers.Dense(3, activation="softmax",
                           kernel_initializer=keras.initializers.GlorotNormal(seed))(h)
    return keras.Model(inputs, outputs, name="transfer")


def mc_reference(model, x, num_samples, seed=123, loop=False):
    """The plain reference: a copy whose dropout layers are always on (MCDropout /
    MCAlphaDropout / GaussianDropout forced on), BatchNorm in inference mode; with
    `loop=True` one sample per forward pass, as the chapter's loop."""

    class AlwaysOnGaussian(layers.GaussianDropout):
        def call(self, inputs, training=None):
            return super().call(inputs, training=True)

    class AlwaysOnSpatial1D(layers.SpatialDropout1D):
        def call(self, inputs, training=None):
            return super().call(inputs, training=True)

    replacements = {
        layers.Dropout: MCDropout,
        layers.AlphaDropout: MCAlphaDropout,
        layers.GaussianDropout: AlwaysOnGaussian,
        layers.SpatialDropout1D: AlwaysOnSpatial1D,
    }
    counter = iter(range(seed, seed + 1000))

    def clone(layer):
        config = layer.get_config()
        if type(layer) in replacements:
            config["seed"] = next(counter)
            return replacements[type(layer)].from_config(config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    if loop:
        return np.stack([_np(copy(x, training=False)) for _ in range(num_samples)])
    # One pass over the inputs repeated num_samples times: Keras's own dropout draws an
    # independent mask for every row.
    flat = _np(copy(np.repeat(x, num_samples, axis=0), training=False))
    return np.moveaxis(flat.reshape((len(x), num_samples) + flat.shape[1:]), 1, 0)


# --------------------------------------------------------------------------- #
# Statistics: golden values
# --------------------------------------------------------------------------- #
def test_statistics_softmax_golden():
    samples = np.array(
        [
            [[1.0, 0.0], [0.0, 1.0]],  # the samples disagree completely
            [[0.5, 0.5], [0.5, 0.5]],  # they agree on "no idea"
            [[0.9, 0.1], [0.9, 0.1]],  # they agree on class 0
        ],
        "float32",
    )  # (batch, samples, classes)
    out = {k: _np(v) for k, v in mc_statistics(samples, "softmax").items()}
    np.testing.assert_allclose(out["mean"], [[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]], atol=1e-7)
    np.testing.assert_allclose(out["std"], [[0.5, 0.5], [0, 0], [0, 0]], atol=1e-7)
    h09 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    np.testing.assert_allclose(out["entropy"], [math.log(2), math.log(2), h09], rtol=1e-6)
    np.testing.assert_allclose(out["mutual_information"], [math.log(2), 0, 0], atol=1e-6)


def test_statistics_sigmoid_and_regression_golden():
    samples = np.array([[[0.2], [0.8]]], "float32")
    out = {k: _np(v) for k, v in mc_statistics(samples, "sigmoid").items()}
    h02 = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))
    np.testing.assert_allclose(out["mean"], [[0.5]], atol=1e-7)
    np.testing.assert_allclose(out["std"], [[0.3]], atol=1e-7)
    np.testing.assert_allclose(out["entropy"], [[math.log(2)]], rtol=1e-6)
    np.testing.assert_allclose(out["mutual_information"], [[math.log(2) - h02]], rtol=1e-5)

    values = np.random.default_rng(0).normal(3.0, 2.0, size=(4, 50, 2)).astype("float32")
    out = {k: _np(v) for k, v in mc_statistics(values, "regression").items()}
    assert set(out) == {"mean", "std"}
    np.testing.assert_allclose(out["mean"], values.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(out["std"], values.std(axis=1), rtol=1e-4)


def test_statistics_from_logits():
    logits = np.array([[[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]]], "float32")
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    out = {k: _np(v) for k, v in mc_statistics(logits, "softmax", from_logits=True).items()}
    np.testing.assert_allclose(out["mean"], probabilities.mean(axis=1), rtol=1e-6)
    mean = probabilities.mean(axis=1)
    np.testing.assert_allclose(out["entropy"], -(mean * np.log(mean)).sum(-1), rtol=1e-6)


# --------------------------------------------------------------------------- #
# Value tests against closed forms and the plain loop
# --------------------------------------------------------------------------- #
def test_rate_zero_equals_predict_and_std_is_zero():
    model = bn_dropout_model(rate=0.0)
    x = _x(30)
    result = MCDropoutPredictor(model, num_samples=20, seed=0, batch_size=7).predict(x)
    np.testing.assert_allclose(result.mean, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert np.all(result.std == 0)
    assert np.all(result.mutual_information == 0)


def test_rate_zero_transfer_model_equals_predict():
    model = transfer_model(rate=0.0)
    x = np.random.default_rng(1).normal(size=(9, 8, 8, 2)).astype("float32")
    result = MCDropoutPredictor(model, num_samples=10, seed=0).predict(x)
    np.testing.assert_allclose(result.mean, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert np.all(result.std == 0)


def test_closed_form_linear_head():
    """Dropout(p) followed by a linear unit: mean = prediction without dropout and
    variance = p / (1 - p) * sum_j (h_j w_j)^2, where h is the input of the dropout."""
    p = 0.4
    inputs = keras.Input((6,))
    h = layers.Dense(10, activation="elu",
                     kernel_initializer=keras.initializers.GlorotNormal(0))(inputs)
    h = layers.BatchNormalization()(h)
    y = layers.Dropout(p, seed=0)(h)
    outputs = layers.Dense(1, kernel_initializer=keras.initializers.GlorotNormal(1))(y)
    model = keras.Model(inputs, outputs)
    _set_bn_statistics(model)
    x = _x(5)
    features = keras.Model(inputs, h).predict(x, verbose=0)
    kernel = model.layers[-1].kernel.numpy()[:, 0]
    expected_std = np.sqrt(p / (1 - p) * ((features * kernel) ** 2).sum(axis=1))
    num_samples = 4000
    result = MCDropoutPredictor(model, num_samples=num_samples, seed=0).predict(
        x, return_samples=True)
    assert result.task == "regression" and result.entropy is None
    standard_error = expected_std / math.sqrt(num_samples)
    assert np.all(np.abs(result.mean[:, 0] - model.predict(x, verbose=0)[:, 0])
                  < 5 * standard_error)
    # Standard error of a sample std (delta method): sqrt(mu4 - sigma^4) / (2 sigma sqrt(n)).
    centred = result.samples[:, :, 0] - result.mean[:, 0]
    fourth = (centred.astype("float64") ** 4).mean(axis=0)
    se_std = np.sqrt(fourth - expected_std**4) / (2 * expected_std * math.sqrt(num_samples))
    assert np.all(np.abs(result.std[:, 0] - expected_std) < 5 * se_std)


def _assert_agree(samples_a, samples_b):
    """Per input and output: means and stds agree within 5 standard errors."""
    n_a, n_b = len(samples_a), len(samples_b)
    mean_a, mean_b = samples_a.mean(0), samples_b.mean(0)
    var_a, var_b = samples_a.var(0), samples_b.var(0)
    se_mean = np.sqrt(var_a / n_a + var_b / n_b) + 1e-7
    assert np.all(np.abs(mean_a - mean_b) < 5 * se_mean)

    def se_variance(samples, var):
        fourth = ((samples - samples.mean(0)) ** 4).mean(0)
        return np.sqrt(np.maximum(fourth - var**2, 0) / len(samples))

    se_var = np.sqrt(se_variance(samples_a, var_a) ** 2 + se_variance(samples_b, var_b) ** 2)
    assert np.all(np.abs(var_a - var_b) < 5 * se_var + 1e-7)
    return np.abs(mean_a - mean_b) / se_mean


@pytest.mark.parametrize("share_masks", [True, False])
@pytest.mark.parametrize(
    "dropout", [layers.Dropout, layers.AlphaDropout, layers.GaussianDropout],
    ids=["Dropout", "AlphaDropout", "GaussianDropout"],
)
def test_agrees_with_reference_loop(dropout, share_masks):
    model = bn_dropout_model(rate=0.3, dropout=dropout)
    x = _x(10)
    loop = dropout is layers.Dropout and not share_masks  # the literal loop, once
    num_samples = 300 if loop else 600
    predictor = MCDropoutPredictor(model, num_samples=num_samples, seed=5, batch_size=4,
                                   share_masks=share_masks)
    result = predictor.predict(x, return_samples=True)
    reference = mc_reference(model, x, num_samples, loop=loop)
    z = _assert_agree(result.samples, reference)
    assert z.mean() < 1.5  # not only within bounds: centred like sampling noise
    np.testing.assert_allclose(result.mean, result.samples.mean(0), atol=1e-6)
    np.testing.assert_allclose(result.std, result.samples.std(0), atol=1e-5)


def test_agrees_with_reference_noise_shape_and_spatial_dropout():
    inputs = keras.Input((5, 4))
    x = layers.Dense(6, kernel_initializer=keras.initializers.GlorotNormal(0))(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Dropout(0.3, noise_shape=(None, 1, 6), seed=0)(x)
    x = layers.SpatialDropout1D(0.3, seed=1)(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(2, kernel_initializer=keras.initializers.GlorotNormal(1))(x)
    model = keras.Model(inputs, outputs)
    _set_bn_statistics(model)
    data = np.random.default_rng(0).normal(size=(6, 5, 4)).astype("float32")
    result = MCDropoutPredictor(model, num_samples=500, seed=1).predict(data, return_samples=True)
    _assert_agree(result.samples, mc_reference(model, data, 500))


def test_agrees_with_reference_transfer_model():
    model = transfer_model(rate=0.5)
    x = np.random.default_rng(2).normal(size=(6, 8, 8, 2)).astype("float32")
    result = MCDropoutPredictor(model, num_samples=500, seed=3).predict(x, return_samples=True)
    _assert_agree(result.samples, mc_reference(model, x, 500))


def test_mixed_deterministic_and_stochastic_branches():
    """A skip connection around the dropout joins the sampled branch correctly."""
    inputs = keras.Input((6,))
    h = layers.Dense(8, activation="relu")(inputs)
    noisy = layers.Dense(8)(layers.Dropout(0.5, seed=0)(h))
    joined = layers.Concatenate()([layers.Add()([h, noisy]), h])
    outputs = layers.Dense(2)(joined)
    model = keras.Model(inputs, outputs)
    x = _x(7)
    result = MCDropoutPredictor(model, num_samples=500, seed=0).predict(x, return_samples=True)
    _assert_agree(result.samples, mc_reference(model, x, 500))


# --------------------------------------------------------------------------- #
# Effect: BatchNorm untouched; the usual trick breaks it
# --------------------------------------------------------------------------- #
def _state(model):
    return [np.array(w) for w in model.get_weights()]


def test_batchnorm_stays_in_inference_mode_and_is_not_updated():
    model = bn_dropout_model(rate=0.3)
    x = _x(32) * 3 + 2
    before = _state(model)
    predictor = MCDropoutPredictor(model, num_samples=50, seed=0)
    single = predictor.predict(x[:1])
    batch = predictor.predict(x)
    for a, b in zip(before, _state(model)):
        np.testing.assert_array_equal(a, b)
    # A batch of one gives the same distribution as the same input inside a batch.
    assert np.all(np.abs(single.mean[0] - batch.mean[0])
                  < 6 * np.sqrt(2 * batch.std[0] ** 2 / 50) + 1e-6)


def _batchnorm_inference(layer, h):
    """BatchNormalization's inference formula, in NumPy, from the layer's variables."""
    gamma, beta, mean, variance = (_np(w).astype("float64") for w in (
        layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance))
    return gamma * (h - mean) / np.sqrt(variance + layer.epsilon) + beta


def test_every_sample_has_dropout_on_and_batchnorm_in_inference_mode():
    """Dense -> BN -> Dropout -> BN: each sampled unit is exactly BN's inference formula
    applied to the unit kept (scaled by 1 / (1 - p)) or dropped. In training mode the
    BatchNorm layers would normalise with the statistics of the (tiled) batch instead,
    and update their moving statistics."""
    p = 0.5
    inputs = keras.Input((6,))
    h = layers.Dense(8, kernel_initializer=keras.initializers.GlorotNormal(0), name="d1")(inputs)
    h = layers.BatchNormalization(name="bn1")(h)
    y = layers.Dropout(p, seed=0, name="drop")(h)
    model = keras.Model(inputs, layers.BatchNormalization(name="bn2")(y))
    _set_bn_statistics(model)
    x = _x(5) * 3 + 2  # far from the moving statistics, so batch statistics would differ
    before = _state(model)
    result = MCDropoutPredictor(model, num_samples=200, seed=0, share_masks=False).predict(
        x, return_samples=True)
    for a, b in zip(before, _state(model)):  # moving statistics included
        np.testing.assert_array_equal(a, b)

    dense = model.get_layer("d1")
    features = _batchnorm_inference(model.get_layer("bn1"),
                                    x.astype("float64") @ _np(dense.kernel) + _np(dense.bias))
    kept = _batchnorm_inference(model.get_layer("bn2"), features / (1 - p))
    dropped = _batchnorm_inference(model.get_layer("bn2"), np.zeros_like(features))
    is_kept = np.isclose(result.samples, kept, rtol=1e-4, atol=1e-4)
    is_dropped = np.isclose(result.samples, dropped, rtol=1e-4, atol=1e-4)
    assert np.all(is_kept | is_dropped)
    # Dropout is on: units are dropped at rate p (5 standard errors).
    assert abs(is_dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / is_dropped.size)


def test_chapter_trick_breaks_batchnorm():
    """`model(x, training=True)` normalises with batch statistics (a batch of one
    collapses to BatchNorm's offset) and overwrites the moving statistics."""
    model = bn_dropout_model(rate=0.0)
    x = _x(32) * 3 + 2
    first, second = x[:1], x[1:2]
    # The trick: a single input's output no longer depends on the input.
    np.testing.assert_allclose(_np(model(first, training=True)),
                               _np(model(second, training=True)), atol=1e-6)
    predictor = MCDropoutPredictor(model, num_samples=5, seed=0)
    a, b = predictor.predict(first).mean, predictor.predict(second).mean
    assert np.abs(a - b).max() > 1e-2
    np.testing.assert_allclose(a, model.predict(first, verbose=0), rtol=1e-5, atol=1e-6)
    # The trick also overwrites the moving statistics; the predictor does not.
    bn = model.get_layer("bn1")
    before = bn.moving_mean.numpy().copy()
    predictor.predict(x)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
    model(x, training=True)
    assert not np.allclose(bn.moving_mean.numpy(), before)


def test_original_model_untouched(tmp_path):
    model = bn_dropout_model(rate=0.3)
    x = _x(10)
    predicted = model.predict(x, verbose=0)
    dropout_states = [keras.ops.convert_to_numpy(layer.seed_generator.state)
                      for layer in model.layers if isinstance(layer, layers.Dropout)]
    nodes = {layer.name: len(ki.inbound_nodes(layer)) for layer in model.layers}
    config = model.get_config()
    MCDropoutPredictor(model, num_samples=20, seed=0).predict(x)
    MCDropoutPredictor(model, num_samples=20, seed=0, share_masks=False).predict(x)
    np.testing.assert_array_equal(model.predict(x, verbose=0), predicted)
    after = [keras.ops.convert_to_numpy(layer.seed_generator.state)
             for layer in model.layers if isinstance(layer, layers.Dropout)]
    for a, b in zip(dropout_states, after):
        np.testing.assert_array_equal(a, b)
    assert {layer.name: len(ki.inbound_nodes(layer)) for layer in model.layers} == nodes
    assert model.get_config() == config
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), predicted)


def test_loaded_model_gives_same_result(tmp_path):
    model = bn_dropout_model(rate=0.3)
    x = _x(10)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    a = MCDropoutPredictor(model, num_samples=30, seed=4).predict(x)
    b = MCDropoutPredictor(loaded, num_samples=30, seed=4).predict(x)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- #
# Effect: fast by construction
# --------------------------------------------------------------------------- #
class RowCounter(layers.Layer):
    """Identity that counts the rows it processes (a test probe)."""

    def build(self, input_shape):
        self.rows = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                    name="rows")

    def call(self, x):
        self.rows.assign_add(keras.ops.cast(keras.ops.shape(x)[0], "float32"))
        return x


def test_prefix_computed_once_suffix_sampled():
    inputs = keras.Input((6,))
    before = RowCounter(name="before")
    after = RowCounter(name="after")
    h = before(layers.Dense(8)(inputs))
    h = after(layers.Dense(8)(layers.Dropout(0.5)(h)))
    model = keras.Model(inputs, layers.Dense(2)(h))
    before.rows.assign(0.0)
    after.rows.assign(0.0)
    MCDropoutPredictor(model, num_samples=25, seed=0, batch_size=4).predict(_x(8))
    assert float(before.rows.numpy()) == 8  # once per input
    assert float(after.rows.numpy()) == 8 * 25  # once per input and sample


def test_shared_masks_are_shared_across_inputs_only():
    model = bn_dropout_model(rate=0.5)
    x = np.repeat(_x(1), 4, axis=0)  # four copies of one input
    shared = MCDropoutPredictor(model, num_samples=8, seed=0, batch_size=4)
    samples = shared.predict(x, return_samples=True).samples
    # Same masks across inputs: equal to float precision (the rows of one batch may differ in
    # their last bits, 2e-7 measured with TensorFlow 2.21's batched matmul), by the tolerance
    # of np.allclose that the other two checks use to tell masks apart.
    np.testing.assert_allclose(samples[:, 0], samples[:, 3], rtol=1e-5, atol=1e-8)
    assert not np.allclose(samples[0, 0], samples[1, 0])  # fresh masks across samples
    independent = MCDropoutPredictor(model, num_samples=8, seed=0, batch_size=4,
                                     share_masks=False)
    samples = independent.predict(x, return_samples=True).samples
    assert not np.allclose(samples[:, 0], samples[:, 3])


def test_chunking_and_padding_do_not_change_the_statistics():
    model = bn_dropout_model(rate=0.0)
    x = _x(11)
    results = [MCDropoutPredictor(model, num_samples=4, seed=0, batch_size=b).predict(x)
               for b in (1, 3, 11, 64)]
    for result in results[1:]:
        np.testing.assert_allclose(result.mean, results[0].mean, rtol=1e-5, atol=1e-6)
        assert result.mean.shape == (11, 3)


# --------------------------------------------------------------------------- #
# Reproducibility
# --------------------------------------------------------------------------- #
def test_same_seed_same_result():
    model = bn_dropout_model(rate=0.3)
    x = _x(9)
    a = MCDropoutPredictor(model, num_samples=20, seed=11).predict(x)
    predictor = MCDropoutPredictor(model, num_samples=20, seed=11)
    b, c = predictor.predict(x), predictor.predict(x)
    for result in (b, c):
        np.testing.assert_array_equal(result.mean, a.mean)
        np.testing.assert_array_equal(result.std, a.std)
    other = MCDropoutPredictor(model, num_samples=20, seed=12).predict(x)
    assert not np.allclose(other.mean, a.mean)
    unseeded = MCDropoutPredictor(model, num_samples=20)
    assert not np.allclose(unseeded.predict(x).mean, unseeded.predict(x).mean)


def test_seed_none_leaves_global_random_state_alone():
    import random

    model = bn_dropout_model(rate=0.3)
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 -- the legacy global state is what is checked
    expected = (random.random(), np.random.random())  # noqa: NPY002
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002
    MCDropoutPredictor(model, num_samples=5).predict(_x(3))
    assert (random.random(), np.random.random()) == expected  # noqa: NPY002


# --------------------------------------------------------------------------- #
# Model kinds and tasks
# --------------------------------------------------------------------------- #
def test_sequential_and_nested_sequential():
    inner = keras.Sequential([keras.Input((6,)), layers.Dense(8, activation="relu"),
                              layers.Dropout(0.5, name="inner_drop")], name="inner")
    model = keras.Sequential([keras.Input((6,)), inner, layers.Dense(2)])
    predictor = MCDropoutPredictor(model, num_samples=300, seed=0)
    assert predictor.dropout_layers == ["inner_drop"]
    x = _x(5)
    result = predictor.predict(x, return_samples=True)
    assert result.std.max() > 0
    _assert_agree(result.samples, mc_reference(model, x, 300))


def test_multi_input_list_and_dict():
    a, b = keras.Input((3,), name="a"), keras.Input((4,), name="b")
    h = layers.Concatenate()([layers.Dense(4)(a), layers.Dropout(0.3)(layers.Dense(4)(b))])
    model = keras.Model({"a": a, "b": b}, layers.Dense(1)(h))
    xa, xb = _x(6, 3), _x(6, 4, seed=1)
    predictor = MCDropoutPredictor(model, num_samples=10, seed=0)
    from_dict = predictor.predict({"a": xa, "b": xb})
    assert from_dict.mean.shape == (6, 1)
    joined = layers.Concatenate()([layers.Dense(4)(a), layers.Dense(4)(b)])
    list_model = keras.Model([a, b], layers.Dense(1)(layers.Dropout(0.0)(joined)))
    zero = MCDropoutPredictor(list_model, num_samples=3, seed=0)
    np.testing.assert_allclose(zero.predict([xa, xb]).mean,
                               list_model.predict([xa, xb], verbose=0), rtol=1e-5, atol=1e-5)


def test_masks_propagate_through_tiling_and_dropout():
    class MaskFraction(layers.Layer):
        """Outputs the fraction of unmasked timesteps (1.0 when no mask arrives)."""

        def call(self, x, mask=None):
            if mask is None:
                return keras.ops.ones((keras.ops.shape(x)[0], 1))
            return keras.ops.mean(keras.ops.cast(mask, "float32"), axis=1, keepdims=True)

        def compute_mask(self, x, mask=None):
            return None

    inputs = keras.Input((4,), dtype="int32")
    h = layers.Embedding(10, 3, mask_zero=True)(inputs)
    h = layers.Dropout(0.5, seed=0)(h)
    outputs = MaskFraction()(h)
    model = keras.Model(inputs, outputs)
    tokens = np.array([[5, 3, 0, 0], [1, 2, 3, 0]], "int32")
    result = MCDropoutPredictor(model, num_samples=6, seed=0, task="regression").predict(tokens)
    np.testing.assert_allclose(result.mean[:, 0], [0.5, 0.75])
    assert np.all(result.std == 0)


def test_classification_outputs_and_classes():
    model = bn_dropout_model(rate=0.3)
    x = _x(8)
    predictor = MCDropoutPredictor(model, num_samples=30, seed=0)
    result = predictor.predict(x)
    assert isinstance(result, MCDropoutResult)
    assert result.task == "classification"
    assert result.mean.shape == (8, 3) and result.std.shape == (8, 3)
    assert result.entropy.shape == (8,) and result.mutual_information.shape == (8,)
    assert np.all(result.mutual_information <= result.entropy + 1e-6)
    assert np.all(result.mutual_information >= 0)
    np.testing.assert_allclose(result.mean.sum(-1), 1, rtol=1e-5)
    np.testing.assert_array_equal(predictor.predict_classes(x), result.mean.argmax(-1))
    np.testing.assert_array_equal(result.predict_classes(), result.mean.argmax(-1))


def test_binary_sigmoid_and_logits():
    inputs = keras.Input((6,))
    h = layers.Dropout(0.3)(layers.Dense(8, activation="relu")(inputs))
    logits = layers.Dense(1)(h)
    x = _x(10)
    sigmoid_model = keras.Model(inputs, layers.Activation("sigmoid")(logits))
    logit_model = keras.Model(inputs, logits)
    probs = MCDropoutPredictor(sigmoid_model, num_samples=40, seed=0).predict(x)
    from_logits = MCDropoutPredictor(logit_model, num_samples=40, seed=0,
                                     from_logits=True).predict(x)
    assert probs.entropy.shape == (10,)
    np.testing.assert_allclose(from_logits.mean, probs.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(from_logits.entropy, probs.entropy, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(probs.predict_classes(), (probs.mean[:, 0] > 0.5).astype(int))


def test_select_dropout_layers():
    inputs = keras.Input((6,))
    h = layers.Dense(8, activation="relu")(inputs)
    live = layers.Dense(2)(layers.Dropout(0.5, name="live")(h))
    dead = layers.Dense(2, kernel_initializer="zeros")(layers.Dropout(0.5, name="dead")(h))
    model = keras.Model(inputs, layers.Add()([live, dead]))
    x = _x(5)
    only_dead = MCDropoutPredictor(model, num_samples=20, seed=0, dropout_layers=["dead"])
    assert only_dead.dropout_layers == ["dead"]
    result = only_dead.predict(x)
    assert np.all(result.std == 0)
    np.testing.assert_allclose(result.mean, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert MCDropoutPredictor(model, num_samples=20, seed=0).predict(x).std.max() > 0


def test_tf_dataset_input():
    import tensorflow as tf

    model = bn_dropout_model(rate=0.0)
    x = _x(10)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(4)
    result = MCDropoutPredictor(model, num_samples=3, seed=0).predict(dataset)
    np.testing.assert_allclose(result.mean, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
def test_model_without_dropout():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)], name="plain")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a model with at least one Dropout, AlphaDropout or "
            "GaussianDropout layer (Monte-Carlo Dropout samples those layers). "
            "Received: model='plain'. Add dropout")):
        MCDropoutPredictor(model)


def test_dropout_hidden_in_subclassed_layer():
    inputs = keras.Input((4, 8))
    h = layers.MultiHeadAttention(2, 4, dropout=0.1, name="mha")(inputs, inputs)
    h = layers.Dropout(0.2, name="top")(h)
    model = keras.Model(inputs, layers.Dense(1)(h))
    with pytest.raises(ValueError, match=re.escape(
            "Argument `dropout_layers` must be a list naming the dropout layers to sample "
            "when the model also has active dropout inside subclassed layers ['mha']")):
        MCDropoutPredictor(model)
    predictor = MCDropoutPredictor(model, num_samples=3, dropout_layers=["top"])
    assert predictor.predict(np.zeros((2, 4, 8), "float32")).mean.shape == (2, 4, 1)


# --------------------------------------------------------------------------- #
# Subclassed models: only the dropout layers sample
# --------------------------------------------------------------------------- #
class SubclassedNet(keras.Model):
    """Dense -> BN -> ELU -> dropout -> Dense(softmax), with a `call` that passes
    `training` on explicitly, as subclassed models usually do."""

    def __init__(self, dropout=layers.Dropout, rate=0.3, units=3, activation="softmax",
                 **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.GlorotNormal
        self.dense = layers.Dense(16, kernel_initializer=init(0))
        self.bn = layers.BatchNormalization()
        self.drop = dropout(rate, seed=1)
        self.head = layers.Dense(units, activation=activation, kernel_initializer=init(1))

    def call(self, x, training=None):
        h = keras.ops.elu(self.bn(self.dense(x), training=training))
        return self.head(self.drop(h, training=training))


def subclassed_model(**kwargs):
    model = SubclassedNet(name="net", **kwargs)
    model(_x(2))
    _set_bn_statistics(model)
    return model


def subclassed_reference(model, x, num_samples, **kwargs):
    """The chapter's loop on a copy whose Dropout is MCDropout (always on), BatchNorm
    in inference mode: one forward pass per sample."""
    copy = SubclassedNet(dropout=MCDropout, **kwargs)
    copy(_x(2))
    copy.set_weights(model.get_weights())
    return np.stack([_np(copy(x, training=False)) for _ in range(num_samples)])


@pytest.mark.parametrize("share_masks", [True, False])
def test_subclassed_model_agrees_with_reference_loop(share_masks):
    model = subclassed_model()
    x = _x(6) * 2 + 1  # far from the moving statistics: batch statistics would differ
    predictor = MCDropoutPredictor(model, num_samples=300, seed=0, share_masks=share_masks)
    assert predictor.task == "classification" and predictor.dropout_layers == [model.drop.name]
    result = predictor.predict(x, return_samples=True)
    z = _assert_agree(result.samples, subclassed_reference(model, x, 300))
    assert z.mean() < 1.5
    np.testing.assert_allclose(result.mean, result.samples.mean(0), atol=1e-6)
    np.testing.assert_allclose(result.std, result.samples.std(0), atol=1e-5)
    assert result.entropy.shape == (6,) and np.all(result.mutual_information >= 0)
    np.testing.assert_allclose(result.mean.sum(-1), 1, atol=1e-5)


def test_subclassed_model_untouched_and_batchnorm_in_inference_mode():
    model = subclassed_model()
    x = _x(8) * 3 + 2
    before = _state(model)  # moving mean and variance included
    predicted = _np(model.predict(x, verbose=0))
    moving = [_np(model.bn.moving_mean), _np(model.bn.moving_variance)]
    seed_state = _np(model.drop.seed_generator.state)
    predictor = MCDropoutPredictor(model, num_samples=40, seed=3)
    batch = predictor.predict(x)
    single = predictor.predict(x[:1])
    for a, b in zip(before, _state(model)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(moving[0], _np(model.bn.moving_mean))
    np.testing.assert_array_equal(moving[1], _np(model.bn.moving_variance))
    np.testing.assert_array_equal(predicted, _np(model.predict(x, verbose=0)))
    np.testing.assert_array_equal(seed_state, _np(model.drop.seed_generator.state))
    assert "call" not in vars(model.drop)  # the sampling call was removed again
    # BatchNorm in inference mode: one input alone gets the statistics it gets in a
    # batch (with shared masks the two calls draw the same masks).
    np.testing.assert_allclose(single.mean[0], batch.mean[0], atol=1e-5)
    # with the rate at 0, exactly the model's prediction
    still = subclassed_model(rate=0.0)
    result = MCDropoutPredictor(still, num_samples=5).predict(x)
    np.testing.assert_array_equal(result.mean, _np(still.predict(x, verbose=0)))
    assert np.all(result.std == 0)


def test_subclassed_model_logits_nested_dropout_and_errors():
    model = subclassed_model(units=1, activation=None)
    predictor = MCDropoutPredictor(model, num_samples=20, seed=0, from_logits=True)
    result = predictor.predict(_x(5))
    assert result.task == "classification" and result.entropy.shape == (5,)
    assert np.all((result.mean > 0) & (result.mean < 1))
    assert predictor.predict_classes(_x(5)).shape == (5,)

    class Attention(keras.Model):  # dropout only inside MultiHeadAttention
        def __init__(self):
            super().__init__(name="attention")
            self.mha = layers.MultiHeadAttention(2, 4, dropout=0.5)
            self.head = layers.Dense(1)

        def call(self, x):
            return self.head(self.mha(x, x))

    attention = Attention()
    tokens = np.random.default_rng(0).normal(size=(3, 4, 8)).astype("float32")
    attention(tokens)
    result = MCDropoutPredictor(attention, num_samples=20, seed=0).predict(tokens)
    assert result.task == "regression" and np.all(result.std > 0)

    class TwoOutputs(keras.Model):
        def __init__(self):
            super().__init__(name="two_outputs")
            self.drop = layers.Dropout(0.2)

        def call(self, x):
            return self.drop(x), x

    two = TwoOutputs()
    two(_x(2))
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a model with a single output. "
            "Received: model='two_outputs' (it returns 2 tensors)")):
        MCDropoutPredictor(two, num_samples=2).predict(_x(2))
    assert "call" not in vars(two.drop)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a built model. Received: model='net'")):
        MCDropoutPredictor(SubclassedNet(name="net"))


def test_bad_arguments():
    model = bn_dropout_model()
    cases = [
        (TypeError, "Argument `model` must be a keras.Model. Received: model='m'",
         dict(model="m")),
        (ValueError, "Argument `num_samples` must be an integer >= 2. Received: num_samples=1",
         dict(num_samples=1)),
        (TypeError, "Argument `num_samples` must be an integer >= 2. Received: num_samples=2.5",
         dict(num_samples=2.5)),
        (ValueError, "Argument `seed` must be a non-negative integer or None. Received: seed=-1",
         dict(seed=-1)),
        (ValueError, "Argument `batch_size` must be a positive integer or None. "
                     "Received: batch_size=0", dict(batch_size=0)),
        (ValueError, "Argument `task` must be one of 'auto', 'classification', 'regression'. "
                     "Received: task='clasification'. Did you mean 'classification'?",
         dict(task="clasification")),
        (ValueError, "Argument `dropout_layers` must be one of 'drop1', 'drop2'. "
                     "Received: dropout_layers='drop3'. Did you mean 'drop2'?",
         dict(dropout_layers=["drop3"])),
        (TypeError, "Argument `dropout_layers` must be a list of layer names or None. "
                    "Received: dropout_layers='drop1'", dict(dropout_layers="drop1")),
        (ValueError, "Argument `from_logits` must be False for this model, whose output layer "
                     "already applies softmax. Received: from_logits=True (from_logits=True "
                     "would apply it twice)", dict(from_logits=True)),
        (ValueError, "Argument `from_logits` must be False when task='regression'. "
                     "Received: from_logits=True", dict(from_logits=True, task="regression")),
        (TypeError, "Argument `share_masks` must be a bool (True or False). "
                    "Received: share_masks=1", dict(share_masks=1)),
        (TypeError, "Argument `jit_compile` must be True, False or 'auto'. "
                    "Received: jit_compile='yes'", dict(jit_compile="yes")),
    ]
    for error, message, kwargs in cases:
        kwargs.setdefault("model", model)
        with pytest.raises(error, match=re.escape(message)):
            MCDropoutPredictor(**kwargs)


def test_multi_output_and_unbuilt_models():
    inputs = keras.Input((3,))
    h = layers.Dropout(0.2)(inputs)
    two = keras.Model(inputs, [layers.Dense(1)(h), layers.Dense(1)(h)], name="two")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a model with a single output. Received: model='two' "
            "(it has 2)")):
        MCDropoutPredictor(two)
    unbuilt = keras.Sequential([layers.Dense(2), layers.Dropout(0.2)], name="lazy")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a built model. Received: model='lazy'")):
        MCDropoutPredictor(unbuilt)


def test_bad_x():
    predictor = MCDropoutPredictor(bn_dropout_model(), num_samples=3)
    cases = [
        (ValueError, "Argument `x` must be an array of shape (None, 6) to match the model's "
                     "input. Received: x='<array of shape (4, 5)>'", np.zeros((4, 5))),
        (ValueError, "Argument `x` must be a non-empty array. Received: x='<array of shape "
                     "(0, 6)>'", np.zeros((0, 6))),
        (ValueError, "Argument `x` must be finite values. Received: x='<array with NaN or Inf>'",
         np.full((2, 6), np.nan)),
        (TypeError, "Argument `x` must be the model's input", None),
    ]
    for error, message, x in cases:
        with pytest.raises(error, match=re.escape(message)):
            predictor.predict(x)
    with pytest.raises(TypeError, match=re.escape(
            "Argument `return_samples` must be a bool (True or False). "
            "Received: return_samples='no'")):
        predictor.predict(np.zeros((1, 6)), return_samples="no")


def test_predict_classes_regression_error():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, layers.Dense(1)(layers.Dropout(0.2)(inputs)))
    predictor = MCDropoutPredictor(model, num_samples=3)
    with pytest.raises(ValueError, match=re.escape(
            "`predict_classes` needs a classification model. This predictor has "
            "task='regression'")):
        predictor.predict_classes(np.zeros((2, 3)))


# --------------------------------------------------------------------------- #
# Calibration
# --------------------------------------------------------------------------- #
def _reference_ece(labels, probabilities, num_bins):
    """A direct loop over bins, from the definition (Guo et al., 2017)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    total = 0.0
    for b in range(num_bins):
        low, high = b / num_bins, (b + 1) / num_bins
        in_bin = (confidence > low) & (confidence <= high)
        if b == 0:
            in_bin |= confidence == 0
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return total


def test_ece_golden_and_reference():
    y_prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    y_true = np.array([0, 1, 1, 0])
    # Bins of width 0.2: {0.6} acc 1, {0.8, 0.7} acc 0.5, {0.9} acc 1.
    expected = 0.25 * 0.4 + 0.5 * 0.25 + 0.25 * 0.1
    assert expected_calibration_error(y_true, y_prob, num_bins=5) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 4)) * 2
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 4, 500)
    for bins in (1, 10, 15):
        assert expected_calibration_error(labels, probabilities, bins) == pytest.approx(
            _reference_ece(labels, probabilities, bins), abs=1e-12)


def test_ece_binary_and_one_hot_forms_agree():
    p1 = np.array([0.1, 0.8, 0.6, 0.3, 0.95])
    labels = np.array([0, 1, 0, 1, 1])
    two_columns = np.stack([1 - p1, p1], axis=1)
    reference = expected_calibration_error(labels, two_columns, 5)
    assert expected_calibration_error(labels, p1, 5) == pytest.approx(reference)
    assert expected_calibration_error(labels, p1[:, None], 5) == pytest.approx(reference)
    assert expected_calibration_error(np.eye(2)[labels], two_columns, 5) == pytest.approx(
        reference)


def test_ece_effect_calibrated_vs_overconfident():
    rng = np.random.default_rng(0)
    n = 20000
    confidence = rng.uniform(0.5, 1.0, n)
    correct = rng.uniform(size=n) < confidence  # calibrated by construction
    labels = np.where(correct, 1, 0)
    calibrated = confidence  # probability of class 1
    overconfident = np.clip(confidence + 0.3 * (1 - confidence) + 0.05, 0, 1)
    assert expected_calibration_error(labels, calibrated) < 0.02
    assert expected_calibration_error(labels, overconfident) > 0.1


def test_reliability_diagram_data_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y_prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    diagram = reliability_diagram([0, 1, 1, 0], y_prob, num_bins=5)
    np.testing.assert_allclose(diagram.bin_edges, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert diagram.count.tolist() == [0, 0, 1, 2, 1]
    np.testing.assert_allclose(diagram.confidence[2:], [0.6, 0.75, 0.9])
    np.testing.assert_allclose(diagram.accuracy[2:], [1.0, 0.5, 1.0])
    assert np.isnan(diagram.accuracy[0]) and np.isnan(diagram.confidence[1])
    figure, ax = plt.subplots()
    assert diagram.plot(ax=ax) is ax
    assert len(ax.patches) == 5
    plt.close(figure)


def test_calibration_bad_input():
    good = np.array([[0.6, 0.4], [0.2, 0.8]])
    cases = [
        ("Argument `y_prob` must be probabilities in [0, 1] (apply softmax or sigmoid to "
         "logits first). Received: y_prob='<array with values outside [0, 1]>'",
         ([0, 1], good * 3)),
        ("Argument `y_true` must be integer labels in [0, 1]. Received: y_true='<labels in "
         "[0, 2]>'", ([0, 2], good)),
        ("Argument `y_true` must be 2 integer labels (shape (2,)) or one-hot rows matching "
         "y_prob. Received: y_true='<array of shape (3,)>'", ([0, 1, 1], good)),
        ("Argument `num_bins` must be a positive integer. Received: num_bins=0",
         ([0, 1], good, 0)),
        ("Argument `y_prob` must be a non-empty array of probabilities of shape "
         "(n, num_classes) or (n,). Received: y_prob='<array of shape (0,)>'", ([], [])),
    ]
    for message, args in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            expected_calibration_error(*args)


def test_a_subclassed_model_in_compile_recipes_wrapper_agrees_with_the_reference_loop():
    model = subclassed_model()
    wrapper = keras_recipes.compile_recipe(model, loss="sparse_categorical_crossentropy")
    assert type(wrapper) is keras_recipes.models.RecipeWrapper
    x = _x(6) * 2 + 1  # far from the moving statistics: batch statistics would differ
    before = _state(model)  # moving mean and variance included
    result = MCDropoutPredictor(wrapper, num_samples=300, seed=0).predict(x, return_samples=True)
    _assert_agree(result.samples, subclassed_reference(model, x, 300))
    for a, b in zip(before, _state(model)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(_np(wrapper.predict(x, verbose=0)),
                                  _np(model.predict(x, verbose=0)))
