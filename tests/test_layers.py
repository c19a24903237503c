"""MCDropout and MCAlphaDropout: dropout that stays on at prediction time."""

import math
import re

import keras
import numpy as np
import pytest

from keras_recipes.layers import MCAlphaDropout, MCDropout

ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946


def _np(x):
    return keras.ops.convert_to_numpy(x)


# --------------------------------------------------------------------------- #
# Values
# --------------------------------------------------------------------------- #
def test_mc_dropout_values_without_training_flag():
    rate = 0.3
    x = np.full((400, 50), 2.0, "float32")
    y = _np(MCDropout(rate, seed=1)(x))  # no training=True
    # Each unit is either dropped or scaled by 1 / (1 - rate).
    kept = np.isclose(y, 2.0 / (1 - rate), rtol=1e-6)
    assert np.all(kept | (y == 0))
    dropped = np.mean(y == 0)
    n = y.size
    assert abs(dropped - rate) < 5 * math.sqrt(rate * (1 - rate) / n)


def test_mc_alpha_dropout_values_and_moments():
    rate = 0.2
    a = ((1 - rate) * (1 + rate * ALPHA_P**2)) ** -0.5
    b = -a * ALPHA_P * rate
    x = np.random.default_rng(0).standard_normal((200000, 1)).astype("float32")
    y = _np(MCAlphaDropout(rate, seed=3)(x))
    kept = np.isclose(y, a * x + b, atol=1e-5)
    dropped = np.isclose(y, a * ALPHA_P + b, atol=1e-5)
    assert np.all(kept | dropped)
    assert abs(dropped.mean() - rate) < 5 * math.sqrt(rate * (1 - rate) / len(x))
    # The point of AlphaDropout: standard inputs keep mean 0 and variance 1.
    assert abs(y.mean()) < 0.01 and abs(y.std() - 1) < 0.01


@pytest.mark.parametrize("cls", [MCDropout, MCAlphaDropout])
def test_rate_zero_is_identity(cls):
    x = np.random.default_rng(0).standard_normal((8, 5)).astype("float32")
    np.testing.assert_array_equal(_np(cls(0.0)(x)), x)


# --------------------------------------------------------------------------- #
# Effect: on in predict, where the Keras layer is off
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "cls, keras_cls", [(MCDropout, keras.layers.Dropout),
                       (MCAlphaDropout, keras.layers.AlphaDropout)]
)
def test_stays_on_in_predict_where_keras_layer_is_off(cls, keras_cls):
    x = np.random.default_rng(0).standard_normal((16, 6)).astype("float32")

    def model(layer):
        return keras.Sequential([keras.Input((6,)), layer])

    plain = model(keras_cls(0.5, seed=0))
    np.testing.assert_array_equal(plain.predict(x, verbose=0), x)
    mc = model(cls(0.5, seed=0))
    first, second = mc.predict(x, verbose=0), mc.predict(x, verbose=0)
    assert not np.allclose(first, x)
    assert not np.allclose(first, second)  # a fresh mask per call


def test_batchnorm_stays_in_inference_mode_while_mc_dropout_is_on():
    """In `predict`, MCDropout drops units while the BatchNormalization after it uses its
    moving statistics (which do not change): every output unit is BN's inference
    formula applied to the input kept (scaled) or dropped."""
    rate = 0.4
    model = keras.Sequential([keras.Input((5,)), MCDropout(rate, seed=3),
                              keras.layers.BatchNormalization()])
    bn = model.layers[-1]
    rng = np.random.default_rng(0)
    bn.moving_mean.assign(rng.normal(1.0, 0.3, 5).astype("float32"))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, 5).astype("float32"))
    bn.gamma.assign(rng.uniform(0.5, 1.5, 5).astype("float32"))
    before = [np.array(w) for w in model.get_weights()]
    x = np.repeat(rng.normal(3.0, 1.0, (1, 5)), 400, axis=0).astype("float32")
    y = model.predict(x, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)

    scale = _np(bn.gamma) / np.sqrt(_np(bn.moving_variance) + bn.epsilon)
    kept = (x / (1 - rate) - _np(bn.moving_mean)) * scale + _np(bn.beta)
    dropped = -_np(bn.moving_mean) * scale + _np(bn.beta)
    is_kept = np.isclose(y, kept, rtol=1e-5, atol=1e-5)
    is_dropped = np.isclose(y, np.broadcast_to(dropped, y.shape), rtol=1e-5, atol=1e-5)
    assert np.all(is_kept | is_dropped)
    assert abs(is_dropped.mean() - rate) < 5 * math.sqrt(rate * (1 - rate) / y.size)


def test_mc_dropout_average_is_unbiased():
    x = np.full((1, 200), 1.0, "float32")
    layer = MCDropout(0.5, seed=0)
    samples = np.stack([_np(layer(x)) for _ in range(200)])
    # Each output is 0 or 2 with probability 1/2: mean 1, std 1.
    assert abs(samples.mean() - 1.0) < 5 * 1.0 / math.sqrt(samples.size)


def test_is_drop_in_subclass():
    assert isinstance(MCDropout(0.1), keras.layers.Dropout)
    assert isinstance(MCAlphaDropout(0.1), keras.layers.AlphaDropout)


# --------------------------------------------------------------------------- #
# Serialization
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cls", [MCDropout, MCAlphaDropout])
def test_config_round_trip(cls):
    layer = cls(0.25, noise_shape=(None, 1, 4), seed=7, name="mc")
    clone = cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls and restored.rate == 0.25 and restored.seed == 7


@pytest.mark.parametrize("cls", [MCDropout, MCAlphaDropout])
def test_save_load_without_custom_objects(cls, tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), cls(0.4, seed=1),
                              keras.layers.Dense(1)])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.layers[1]
    assert type(layer) is cls and layer.rate == 0.4
    x = np.ones((64, 4), "float32")
    # Still stochastic after loading.
    assert not np.allclose(loaded.predict(x, verbose=0), loaded.predict(x, verbose=0))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("cls", [MCDropout, MCAlphaDropout])
def test_bad_rate(cls):
    with pytest.raises(ValueError, match=re.escape(
            "Argument `rate` must be in the range [0, 1). Received: rate=1.5")):
        cls(1.5)
    with pytest.raises(TypeError, match=re.escape(
            "Argument `rate` must be in the range [0, 1). Received: rate='0.5'")):
        cls("0.5")


def test_bad_seed():
    with pytest.raises(TypeError, match=re.escape(
            "Argument `seed` must be a non-negative integer or None. Received: seed=1.5")):
        MCDropout(0.1, seed=1.5)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `seed` must be a non-negative integer or None. Received: seed=-1")):
        MCDropout(0.1, seed=-1)
