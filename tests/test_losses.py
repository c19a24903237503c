"""Label smoothing (`label_smoothing=` on the classification factories) with integer labels:
`keras_recipes.losses.SparseCategoricalCrossentropy`, and Keras's binary cross-entropy."""

import re

import keras
import numpy as np
import pytest

import keras_recipes
from keras_recipes.losses import SparseCategoricalCrossentropy


def _probabilities(n=12, k=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return p.astype("float32"), rng.integers(0, k, n), logits.astype("float32")


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_equals_the_closed_form_of_smoothed_cross_entropy(smoothing):
    p, y, _ = _probabilities()
    k = p.shape[1]
    targets = np.full(p.shape, smoothing / k)
    targets[np.arange(len(y)), y] += 1 - smoothing
    expected = np.mean(-(targets * np.log(p.astype("float64"))).sum(axis=1))
    loss = SparseCategoricalCrossentropy(label_smoothing=smoothing)
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(y[:, None], p)) == pytest.approx(expected, rel=1e-5)  # labels (n, 1)


def test_agrees_with_keras_s_losses():
    p, y, logits = _probabilities()
    one_hot = np.eye(4, dtype="float32")[y]
    plain = keras.losses.SparseCategoricalCrossentropy()(y, p)
    assert float(SparseCategoricalCrossentropy()(y, p)) == pytest.approx(float(plain), rel=1e-6)
    smoothed = keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(one_hot, p)
    assert float(SparseCategoricalCrossentropy(label_smoothing=0.2)(y, p)) == pytest.approx(
        float(smoothed), rel=1e-6)
    from_logits = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2)
    assert float(SparseCategoricalCrossentropy(0.2, from_logits=True)(y, logits)) == \
        pytest.approx(float(from_logits(one_hot, logits)), rel=1e-6)


def test_config_round_trip():
    loss = SparseCategoricalCrossentropy(label_smoothing=0.15, from_logits=True, name="smooth")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is SparseCategoricalCrossentropy
    assert restored.get_config() == loss.get_config()
    assert (restored.label_smoothing, restored.from_logits, restored.name) == (0.15, True,
                                                                               "smooth")


@pytest.mark.parametrize("make, error, message", [
    (lambda: SparseCategoricalCrossentropy(label_smoothing=1.0), ValueError,
     "Argument `label_smoothing` must be in the range [0, 1). Received: label_smoothing=1.0"),
    (lambda: SparseCategoricalCrossentropy(from_logits="yes"), TypeError,
     "Argument `from_logits` must be a bool (True or False). Received: from_logits='yes'"),
    (lambda: keras_recipes.build_default_dnn((4,), 3, label_smoothing=-0.1), ValueError,
     "Argument `label_smoothing` must be in the range [0, 1). Received: label_smoothing=-0.1"),
    (lambda: keras_recipes.build_plain_dnn((4,), task="regression", label_smoothing=0.1),
     ValueError, "Argument `label_smoothing` must be 0 when task=\"regression\". Received: "
     "label_smoothing=0.1 (label smoothing softens class labels; a regression has none)"),
    (lambda: keras_recipes.build_self_normalizing_dnn((4,), 3, label_smoothing="0.1"),
     TypeError, "Argument `label_smoothing` must be in the range [0, 1). Received: "
     "label_smoothing='0.1'"),
])
def test_bad_label_smoothing_is_refused_with_the_message(make, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        make()


def _own_base():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


@pytest.mark.parametrize("build", [
    lambda **kw: keras_recipes.build_default_dnn((4,), **kw),
    lambda **kw: keras_recipes.build_self_normalizing_dnn((4,), **kw),
    lambda **kw: keras_recipes.build_plain_dnn((4,), **kw),
    lambda **kw: keras_recipes.build_transfer_model(_own_base(), weights=None, **kw),
], ids=["default_dnn", "self_normalizing", "plain_dnn", "transfer"])
def test_every_classification_factory_smooths_integer_labels(build):
    multiclass = build(num_classes=3, label_smoothing=0.1)
    assert isinstance(multiclass.loss, SparseCategoricalCrossentropy)
    assert multiclass.loss.label_smoothing == 0.1
    binary = build(num_classes=2, label_smoothing=0.2)
    assert isinstance(binary.loss, keras.losses.BinaryCrossentropy)
    assert binary.loss.get_config()["label_smoothing"] == 0.2
    assert build(num_classes=3).loss == "sparse_categorical_crossentropy"  # 0: Keras's own


def test_binary_smoothing_is_the_closed_form():
    model = keras_recipes.build_default_dnn((4,), 2, num_hidden_layers=1, label_smoothing=0.2,
                                            seed=0)
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.arange(16) % 2
    p = model.predict(x, verbose=0)[:, 0].astype("float64")
    t = y * 0.8 + 0.1
    expected = np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))
    assert float(model.loss(y[:, None].astype("float32"), p[:, None])) == pytest.approx(
        expected, rel=1e-4)


@pytest.mark.train  # no training, but seconds of compiling
def test_a_model_with_label_smoothing_saves_and_reloads(tmp_path):
    x = np.random.default_rng(1).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    model = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=1, label_smoothing=0.1,
                                            seed=0)
    model.save(tmp_path / "smooth.keras")
    loaded = keras.models.load_model(tmp_path / "smooth.keras")
    assert isinstance(loaded.loss, SparseCategoricalCrossentropy)
    assert loaded.loss.label_smoothing == 0.1
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0),
                               rtol=1e-5)
    with pytest.raises(ValueError, match=re.escape("integer class labels in [0, 3)")):
        loaded.fit(x, y + 1, epochs=1, verbose=0)  # labels still checked with this loss


@pytest.mark.train
def test_label_smoothing_makes_the_model_less_confident():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 6)).astype("float32")
    y = x[:, :3].argmax(axis=1)

    def confidence(smoothing):
        keras.utils.set_random_seed(0)
        model = keras_recipes.build_default_dnn((6,), 3, num_hidden_layers=2, units=32, seed=0,
                                                label_smoothing=smoothing)
        model.fit(x, y, epochs=30, batch_size=32, verbose=0)
        return model.predict(x, verbose=0).max(axis=1).mean()

    sharp, smooth = confidence(0.0), confidence(0.3)
    assert smooth < sharp - 0.05
    assert smooth < 1 - 0.3 + 0.3 / 3 + 0.02  # the smoothed target of the true class, 0.8
