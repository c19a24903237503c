"""Tests of keras_recipes.models.transfer: build_transfer_model, fine_tune and the
preprocessing layer."""

import functools
import os
import pathlib
import re
import sys

import keras
import numpy as np
import pytest
from fixed_order import FixedOrderBatches

import keras_recipes
from keras_recipes._keras_internals import flatten_layers
from keras_recipes.models.transfer import (
    ApplicationPreprocessing,
    build_transfer_model,
    fine_tune,
    transfer_learning_recipe,
)
from keras_recipes.models.transfer.base import application_family, application_names
from keras_recipes.models.transfer.preprocessing import FAMILY_MODES
from keras_recipes.optimizers import learning_rate_schedule
from keras_recipes.schedules import OneCycle

TINY_MOBILENET = dict(input_shape=(32, 32, 3), weights=None, base_kwargs={"alpha": 0.35})


# --- fixtures -----------------------------------------------------------------------------


def _conv_base(input_shape=(16, 16, 3), name="conv_base", seed=0):
    """A small conv net: three Conv -> BatchNorm -> ReLU blocks, 9 layers."""
    inputs = keras.Input(input_shape)
    x = inputs
    for i, (filters, strides) in enumerate([(4, 1), (6, 1), (8, 2)], start=1):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", name=f"conv_{i}",
                                kernel_initializer=keras.initializers.GlorotUniform(seed + i))(x)
        x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
    return keras.Model(inputs, x, name=name)


def _images(n=64, shape=(16, 16, 3), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, *shape)).astype("float32")
    y = (x.reshape(n, -1, shape[-1]).mean(axis=1).argmax(axis=1) % classes).astype("int64")
    return x, y


def _transfer(base=None, **kwargs):
    kwargs = {"dropout_rate": 0.0, "seed": 0, **kwargs}
    return build_transfer_model(_conv_base() if base is None else base, 3, **kwargs)


def _numpy(variables):
    return [keras.ops.convert_to_numpy(w) for w in variables]


def _weights_by_layer(model):
    return {layer.name: _numpy(layer.weights) for layer in model.layers}


def _base_of(model):
    (base,) = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return base


def _changed_layers(before, after):
    changed = set()
    for name, weights in before.items():
        if any(not np.array_equal(a, b) for a, b in zip(weights, after[name])):
            changed.add(name)
    return changed


class _Snapshots(keras.callbacks.Callback):
    """Records the base's and the whole model's weights when each `fit` begins and ends."""

    def __init__(self):
        super().__init__()
        self.begin, self.end = [], []

    def on_train_begin(self, logs=None):
        self.begin.append((_weights_by_layer(_base_of(self.model)), self.model.get_weights()))

    def on_train_end(self, logs=None):
        self.end.append((_weights_by_layer(_base_of(self.model)), self.model.get_weights()))


class _LearningRates(keras.callbacks.Callback):
    """Reads the learning rate each batch runs at (reads only)."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_begin(self, logs=None):
        self.rates.append([])

    def on_train_batch_begin(self, batch, logs=None):
        self.rates[-1].append(float(self.model.optimizer.learning_rate))


# --- ApplicationPreprocessing -------------------------------------------------------------


def test_preprocessing_layer_equals_the_preprocess_input_of_every_family():
    x, _ = _images(n=4, shape=(5, 6, 3), seed=1)
    for family in FAMILY_MODES:
        for data_format in ("channels_last", "channels_first"):
            images = x if data_format == "channels_last" else np.ascontiguousarray(
                np.moveaxis(x, -1, 1))
            reference = getattr(keras.applications, family).preprocess_input(
                images.copy(), data_format=data_format)  # works in place on float arrays
            layer = ApplicationPreprocessing(family, data_format=data_format)
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images)), reference,
                                          err_msg=f"{family}, {data_format}")
            # Raw uint8 images, as an image pipeline gives them.
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(layer(images.astype("uint8"))), reference,
                err_msg=f"{family}, {data_format}, uint8")


def test_every_installed_application_has_a_known_preprocessing_family():
    names = application_names()
    assert {"MobileNetV2", "ResNet50", "EfficientNetB0", "VGG16"} <= set(names)
    for name in names:
        family = application_family(name)
        assert family in FAMILY_MODES, name
        assert hasattr(getattr(keras.applications, family), "preprocess_input"), name


def test_preprocessing_layer_round_trips_its_config_and_rejects_unknown_families():
    layer = ApplicationPreprocessing("resnet", data_format="channels_first", name="pre")
    config = layer.get_config()
    assert config["family"] == "resnet" and config["data_format"] == "channels_first"
    clone = ApplicationPreprocessing.from_config(config)
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 4, 4)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone(x)),
                                  keras.ops.convert_to_numpy(layer(x)))
    with pytest.raises(ValueError, match=re.escape(
            "Argument `family` must be one of 'convnext', ") + ".*" + re.escape(
            "Received: family='mobilenetv2'. Did you mean 'mobilenet_v2'?")):
        ApplicationPreprocessing("mobilenetv2")


# --- build_transfer_model on keras.applications ------------------------------------------


def test_application_model_has_preprocess_input_in_the_graph_before_the_frozen_base():
    keras.utils.set_random_seed(0)
    model = build_transfer_model("MobileNetV2", 4, **TINY_MOBILENET, seed=0)
    base = _base_of(model)
    assert base.name.startswith("mobilenetv2_0.35")
    assert not base.trainable and not any(layer.trainable_weights for layer in base.layers)
    assert isinstance(model.get_layer("preprocessing"), ApplicationPreprocessing)
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer", "ApplicationPreprocessing", "Functional", "GlobalAveragePooling2D",
        "Dropout", "Dense"]
    assert model.get_layer("dropout").rate == 0.2
    # Raw images in, the base sees exactly what preprocess_input gives.
    raw, _ = _images(n=3, shape=(32, 32, 3))
    features = keras.Model(model.inputs[0], model.get_layer("pooling").input)
    expected = base(keras.applications.mobilenet_v2.preprocess_input(raw.copy()),
                    training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(features(raw)),
                               keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-6)
    # Compiled with the recipe: Adam on a 1cycle spread over each fit.
    assert model.compiled and model.recipe.stretches_one_cycle
    assert model.recipe.early_stopping_patience == 5
    assert type(model.optimizer).__name__ == "Adam"
    assert isinstance(learning_rate_schedule(model.optimizer), OneCycle)
    assert learning_rate_schedule(model.optimizer).max_learning_rate == 1e-2
    assert model.loss == "sparse_categorical_crossentropy"


def test_application_names_are_case_insensitive_and_unknown_ones_get_the_closest():
    model = build_transfer_model("mobilenetv2", 2, **TINY_MOBILENET)
    assert model.get_layer("output").units == 1  # binary task: one sigmoid unit
    with pytest.raises(ValueError, match=re.escape(
            "Argument `base` must be one of 'ConvNeXtBase', ") + ".*" + re.escape(
            "Received: base='MobileNetV4'. Did you mean 'MobileNetV2'?")):
        build_transfer_model("MobileNetV4", 3, weights=None)


@pytest.mark.train
def test_default_input_shape_is_the_size_the_imagenet_weights_were_trained_at():
    from keras_recipes.models.transfer.base import default_input_shape

    model = build_transfer_model("MobileNetV2", 3, weights=None, base_kwargs={"alpha": 0.35})
    assert model.input_shape == (None, 224, 224, 3)
    assert default_input_shape("InceptionV3") == (299, 299, 3)
    assert default_input_shape("EfficientNetB3") == (300, 300, 3)
    assert default_input_shape("NASNetLarge") == (331, 331, 3)


@pytest.mark.parametrize("input_shape, weights, message", [
    ((16, 16, 3), None, "Argument `input_shape` must be a shape MobileNetV2 accepts. Received: "
     "input_shape=(16, 16, 3) (keras.applications.MobileNetV2 says: Input size must be at "
     "least 32x32"),
    ((32, 32, 1), "imagenet", "Argument `input_shape` must be a shape MobileNetV2 accepts. "
     "Received: input_shape=(32, 32, 1) (keras.applications.MobileNetV2 says: The input must "
     "have 3 channels"),
    ((32, 32), None, "Argument `input_shape` must be a shape MobileNetV2 accepts. Received: "
     "input_shape=(32, 32)"),
])
def test_an_input_shape_the_application_cannot_take_is_explained(input_shape, weights,
                                                                 message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build_transfer_model("MobileNetV2", 3, input_shape, weights)


def test_weights_load_from_a_local_file_offline(tmp_path):
    keras.utils.set_random_seed(1)
    pretrained = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25,
                                              include_top=False, weights=None)
    path = tmp_path / "mobilenet_no_top.weights.h5"
    pretrained.save_weights(path)
    keras.utils.set_random_seed(2)
    model = build_transfer_model("MobileNet", 3, (32, 32, 3), str(path),
                                 base_kwargs={"alpha": 0.25})
    for loaded, saved in zip(_base_of(model).get_weights(), pretrained.get_weights()):
        np.testing.assert_array_equal(loaded, saved)
    # A file of another architecture is refused with the reason.
    with pytest.raises(ValueError, match=re.escape(
            "Argument `weights` must be a weights file of keras.applications.MobileNet("
            "include_top=False, input_shape=(32, 32, 3), **{'alpha': 0.5}). Received: "
            f"weights={str(path)!r}, which could not be loaded: A total of ")):
        build_transfer_model("MobileNet", 3, (32, 32, 3), path, base_kwargs={"alpha": 0.5})


def test_imagenet_download_failure_says_how_to_work_offline(monkeypatch):
    from keras.src.applications import mobilenet_v2

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/x.h5: None")

    monkeypatch.setattr(mobilenet_v2.file_utils, "get_file", offline)
    with pytest.raises(ConnectionError, match=re.escape(
            'weights="imagenet" downloads the ImageNet weights of MobileNetV2, which failed: '
            "URL fetch failure on https://storage.googleapis.com/x.h5: None. Offline, pass the "
            "path of a weights file of MobileNetV2(include_top=False) as `weights`, or "
            "weights=None.")):
        build_transfer_model("MobileNetV2", 3, (96, 96, 3), "imagenet",
                             base_kwargs={"alpha": 0.35})


_BAD_BUILD_ARGUMENTS = [
    (dict(weights="missing.weights.h5"), ValueError, "Argument `weights` must be 'imagenet', "
     "None or the path of an existing weights file. Received: weights='missing.weights.h5' "
     "(no file at that path)"),
    (dict(weights=3), TypeError, "Argument `weights` must be 'imagenet', None or the path of "
     "an existing weights file. Received: weights=3"),
    (dict(base_kwargs={"include_top": True}), ValueError, "Argument `base_kwargs` must be free "
     "of 'include_top'. Received: base_kwargs={'include_top': True} (build_transfer_model "
     "sets it"),
    (dict(base_kwargs={"alpah": 0.35}), ValueError, "Argument `base_kwargs` must be arguments "
     "of keras.applications.MobileNetV2: 'alpha', 'name'. Received: base_kwargs={'alpah': "
     "0.35}. Did you mean 'alpha'?"),
    (dict(pooling="mean"), ValueError, "Argument `pooling` must be one of 'avg', 'max'. "
     "Received: pooling='mean'"),
    (dict(num_hidden_layers=-1), ValueError, "Argument `num_hidden_layers` must be a "
     "non-negative integer. Received: num_hidden_layers=-1"),
    (dict(dropout_rate=1.0), ValueError, "Argument `dropout_rate` must be in the range "
     "[0, 1). Received: dropout_rate=1.0"),
    (dict(feature_layer="block_1_project"), ValueError, "Argument `feature_layer` must be None "
     "for a keras.applications base"),
    (dict(preprocessing="resnet51"), ValueError, "Argument `preprocessing` must be one of "),
    (dict(preprocessing=3), TypeError, "Argument `preprocessing` must be \"auto\", None, a "
     "keras.applications module or model name, or a keras Layer. Received: preprocessing=3"),
    (dict(learning_rate="fast"), ValueError, "Argument `learning_rate` must be a number > 0 or "
     "\"find\". Received: learning_rate='fast'"),
    (dict(num_classes=1), ValueError, "Argument `num_classes` must be an integer >= 2. "
     "Received: num_classes=1"),
    (dict(optimizer="adamm"), ValueError, "Argument `optimizer` must be one of 'sgd', "
     "'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam', 'adamax', 'nadam', 'adamw'. "
     "Received: optimizer='adamm'. Did you mean 'adam'?"),
    (dict(backup_dir=3), TypeError, "Argument `backup_dir` must be None or a folder path. "
     "Received: backup_dir=3"),
    (dict(distribution="mirrored"), TypeError, "Argument `distribution` must be None, a "
     "tf.distribute.Strategy (TensorFlow) or a keras.distribution distribution (JAX). "
     "Received: distribution='mirrored'"),
]


def test_build_transfer_model_rejects_bad_arguments():
    for kwargs, error, message in _BAD_BUILD_ARGUMENTS:
        kwargs = {"base": "MobileNetV2", "num_classes": 3, "input_shape": (32, 32, 3),
                  "weights": None, **kwargs}
        with pytest.raises(error, match=re.escape(message)):
            build_transfer_model(**kwargs)


def test_base_must_be_a_name_or_a_graph_model():
    with pytest.raises(TypeError, match=re.escape(
            "Argument `base` must be a keras.applications model name (e.g. 'MobileNetV2') or a "
            "keras.Model. Received: base=3")):
        build_transfer_model(3, 3)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    built = Subclassed()
    built(np.zeros((1, 8, 8, 3), "float32"))
    for base in (Subclassed(), built):
        with pytest.raises(TypeError, match=re.escape(
                "Argument `base` must be a keras.applications model name or a functional or "
                f"Sequential keras.Model with defined inputs. Received: base={base!r} (a "
                "subclassed model, even built, has no layer graph to take the features from; "
                "rebuild it functionally, from keras.Input through its layers, or call a "
                "Sequential model once on data)")):
            build_transfer_model(base, 3, input_shape=(8, 8, 3))


def test_head_options_are_wired_and_the_task_picks_the_output():
    model = build_transfer_model(_conv_base(), 5, pooling="max", dropout_rate=0.3,
                                 num_hidden_layers=2, units=16, activation="selu", seed=0)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Functional", "GlobalMaxPooling2D", "Dropout", "Dense",
                     "Activation", "Dropout", "Dense", "Activation", "Dropout", "Dense"]
    assert model.get_layer("hidden_1").units == 16
    assert type(model.get_layer("hidden_1").kernel_initializer).__name__ == "LecunNormal"
    assert model.get_layer("dropout_2").rate == 0.3
    assert model.get_layer("output").activation.__name__ == "softmax"
    regression = build_transfer_model(_conv_base(), None, task="regression", num_outputs=2,
                                      one_cycle=False, optimizer="sgd", learning_rate=0.05)
    assert regression.loss == "mse" and regression.get_layer("output").units == 2
    assert float(regression.optimizer.learning_rate) == pytest.approx(0.05)


@pytest.mark.parametrize("activation, initializer", [("tanh", "GlorotNormal"),
                                                     ("sigmoid", "GlorotNormal"),
                                                     ("relu", "HeNormal")])
def test_head_initializer_follows_the_activation(activation, initializer):
    model = _transfer(num_hidden_layers=1, units=8, activation=activation)
    assert type(model.get_layer("hidden_1").kernel_initializer).__name__ == initializer
    assert model.get_layer(f"{activation}_1").activation.__name__ == activation


# --- build_transfer_model on a model of yours --------------------------------------------


def _classifier(input_shape=(16, 16, 3), classes=5, softmax_layer=False):
    inputs = keras.Input(input_shape)
    x = _conv_base(input_shape)(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(12, activation="relu", name="features")(x)
    if softmax_layer:
        x = keras.layers.Dense(classes, name="logits")(x)
        outputs = keras.layers.Softmax(name="probabilities")(x)
    else:
        outputs = keras.layers.Dense(classes, activation="softmax", name="old_output")(x)
    return keras.Model(inputs, outputs, name="pretrained")


@pytest.mark.parametrize("softmax_layer", [False, True])
def test_a_classifier_of_yours_loses_its_classifier_top(softmax_layer):
    pretrained = _classifier(softmax_layer=softmax_layer)
    model = build_transfer_model(pretrained, 3, dropout_rate=0.0)
    base = _base_of(model)
    assert base.name == "pretrained" and base.output_shape == (None, 8 * 8 * 8)
    assert [layer.name for layer in base.layers][-2:] == ["conv_base", "flatten"]
    assert "pooling" not in [layer.name for layer in model.layers]  # features are a vector
    x, _ = _images(n=4)
    # The base computes what the pretrained model computes up to its Flatten layer.
    reference = keras.Model(pretrained.inputs[0], pretrained.get_layer("flatten").output)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(base(x)),
                               keras.ops.convert_to_numpy(reference(x)), rtol=1e-5, atol=1e-5)


def test_a_network_of_dense_layers_loses_only_its_output_layer():
    mlp = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                            keras.layers.Dropout(0.1), keras.layers.Dense(8),
                            keras.layers.ReLU(), keras.layers.Dense(4),
                            keras.layers.Activation("softmax")])
    model = build_transfer_model(mlp, 3)
    assert _base_of(model).output_shape == (None, 8)
    assert [type(layer).__name__ for layer in _base_of(model).layers][-2:] == ["Dense", "ReLU"]


def test_a_feature_map_model_is_used_whole_and_pooled():
    model = build_transfer_model(_conv_base(), 3)
    assert _base_of(model).output_shape == (None, 8, 8, 8)
    assert isinstance(model.get_layer("pooling"), keras.layers.GlobalAveragePooling2D)


def test_feature_layer_by_name_or_index_and_sequential_models():
    pretrained = _classifier()
    by_name = build_transfer_model(pretrained, 3, feature_layer="flatten")
    assert _base_of(by_name).output_shape == (None, 8 * 8 * 8)
    by_index = build_transfer_model(pretrained, 3, feature_layer=1)  # the conv base
    assert _base_of(by_index).output_shape == (None, 8, 8, 8)
    sequential = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
                                   keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(5, activation="softmax")])
    model = build_transfer_model(sequential, 3)
    assert _base_of(model).output_shape == (None, 4)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `feature_layer` must be the name of a layer of 'pretrained'. Received: "
            "feature_layer='featurs'. Did you mean 'features'?")):
        build_transfer_model(pretrained, 3, feature_layer="featurs")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `feature_layer` must be a layer index in the range [-5, 4]. Received: "
            "feature_layer=9")):
        build_transfer_model(pretrained, 3, feature_layer=9)


@pytest.mark.train
def test_your_model_is_copied_so_training_the_transfer_model_leaves_it_unchanged():
    pretrained = _classifier()
    original = _numpy(pretrained.weights)
    model = build_transfer_model(pretrained, 3, feature_layer="flatten", seed=0)
    x, y = _images()
    fine_tune(model, (x, y), head_epochs=0, epochs=1, batch_size=32, verbose=0)
    assert _base_of(model).trainable  # phase 2 unfroze the copy ...
    assert pretrained.trainable  # ... and left yours as it was
    for now, before in zip(_numpy(pretrained.weights), original):
        np.testing.assert_array_equal(now, before)


def test_your_model_input_shape_and_preprocessing():
    pretrained = _classifier()
    with pytest.raises(ValueError, match=re.escape(
            "Argument `input_shape` must be the input shape of `base`, (16, 16, 3). Received: "
            "input_shape=(32, 32, 3)")):
        build_transfer_model(pretrained, 3, input_shape=(32, 32, 3))
    model = build_transfer_model(_conv_base((None, None, 3)), 3, input_shape=(20, 20, 3),
                                 preprocessing=keras.layers.Rescaling(1 / 255, name="scale"))
    assert model.input_shape == (None, 20, 20, 3)
    assert model.layers[1].name == "scale"
    named = build_transfer_model(_conv_base(), 3, preprocessing="ResNet50")
    assert named.get_layer("preprocessing").family == "resnet"
    two_outputs = keras.Model(pretrained.inputs, [pretrained.layers[-1].output,
                                                  pretrained.layers[-2].output])
    with pytest.raises(ValueError, match=re.escape(
            "Argument `base` must be a model with one input and one output.")):
        build_transfer_model(two_outputs, 3)


def test_a_weights_file_of_your_model_is_loaded_into_the_copy(tmp_path):
    pretrained = _classifier()
    path = tmp_path / "pretrained.weights.h5"
    pretrained.save_weights(path)
    changed = _classifier()
    changed.set_weights([np.zeros_like(w) for w in changed.get_weights()])
    model = build_transfer_model(changed, 3, weights=path)
    for loaded, saved in zip(_base_of(model).get_weights(),
                             pretrained.get_layer("conv_base").get_weights()):
        np.testing.assert_array_equal(loaded, saved)


# --- fine_tune ----------------------------------------------------------------------------


@pytest.mark.train
def test_phase_one_changes_no_base_weight_and_trains_the_head():
    x, y = _images()
    model = _transfer()
    snapshots = _Snapshots()
    fine_tune(model, (x, y), head_epochs=2, epochs=0, callbacks=[snapshots], verbose=0)
    (base_before, all_before), (base_after, _) = snapshots.begin[0], snapshots.end[0]
    assert _changed_layers(base_before, base_after) == set()  # BN moving statistics included
    assert not np.array_equal(model.get_layer("output").get_weights()[0], all_before[-2])


@pytest.mark.train
@pytest.mark.parametrize("unfreeze, expected", [
    (3, {"conv_3"}),  # an int counts every layer: bn_3, relu_3 and conv_3
    # A fraction counts the 3 layers with weights, BatchNorm aside, and takes what is above.
    (0.3, {"conv_3"}),  # ceil(0.3 * 3) = 1: conv_3 and above
    (0.5, {"conv_2", "conv_3"}),  # ceil(0.5 * 3) = 2: conv_2 and above
    ("conv_2", {"conv_2", "conv_3"}),
    ("all", {"conv_1", "conv_2", "conv_3"}),
])
def test_phase_two_changes_exactly_the_unfrozen_layers_and_no_batchnorm(unfreeze, expected):
    x, y = _images()
    model = _transfer()
    snapshots = _Snapshots()
    history = fine_tune(model, (x, y), head_epochs=0, epochs=1, unfreeze=unfreeze,
                        batch_size=32, callbacks=[snapshots], verbose=0)
    assert history.history["phase"] == [2]
    before, after = snapshots.begin[0][0], snapshots.end[0][0]
    changed = _changed_layers(before, after)
    assert changed == expected  # no bn_* layer: gamma, beta and moving statistics kept
    for name in expected:  # every variable of an unfrozen layer moved
        assert all(not np.array_equal(a, b) for a, b in zip(before[name], after[name]))
    base = _base_of(model)
    assert {layer.name for layer in base.layers if layer.trainable_weights} == expected


@pytest.mark.train
def test_a_fraction_of_a_saved_model_used_as_base_unfreezes_layers_with_weights(tmp_path):
    # The README's `--set model.base=runs/old/model.keras`: an earlier transfer model, whose
    # top-level layers are its nested conv base and a pooling layer once its classifier is
    # cut. unfreeze=0.3 of those two layers was the pooling alone, which has no weights.
    _transfer().save(tmp_path / "old.keras")
    old = keras.models.load_model(tmp_path / "old.keras")
    model = _transfer(old)
    x, y = _images()
    history = fine_tune(model, (x, y), head_epochs=1, epochs=1, unfreeze=0.3, verbose=0)
    assert history.history["phase"] == [1, 2]
    assert _base_of(model).trainable_weights  # the nested conv base trained in phase 2


@pytest.mark.train
def test_phase_two_runs_at_the_lower_learning_rate_on_its_own_one_cycle():
    x, y = _images()
    model = _transfer(learning_rate=0.01)
    rates = _LearningRates()
    # 2 steps per epoch: 10 steps per phase, whose 1cycle peaks exactly at step 2.
    fine_tune(model, (x, y), head_epochs=5, epochs=5, batch_size=32, callbacks=[rates],
              verbose=0)
    head, tune = rates.rates
    assert len(head) == len(tune) == 10
    assert max(head) == pytest.approx(0.01, rel=1e-5)
    # A fresh cycle over phase 2 alone: up from 1/25 of the peak to a hundredth
    # of the head's rate, and down again.
    schedule = learning_rate_schedule(model.optimizer)
    assert isinstance(schedule, OneCycle)
    assert (schedule.max_learning_rate, schedule.total_steps, schedule.start_step) == (
        pytest.approx(0.0001), 10, 0)
    np.testing.assert_allclose(tune, [float(schedule(step)) for step in range(10)], rtol=1e-5)
    assert tune[0] == pytest.approx(0.0001 / 25, rel=1e-5)
    assert max(tune) == pytest.approx(0.0001, rel=1e-5) == tune[2]
    assert isinstance(model.optimizer, keras_recipes.optimizers.Adam)  # the compiled kind


def _gradients(model, x, y):
    """The loss gradient of each trainable variable, with the backend's own autodiff."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    variables = model.trainable_variables
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, variables)
    elif backend == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_of(trainable):
            y_pred, _ = model.stateless_call(trainable, non_trainable, x, training=True)
            return loss_fn(y, y_pred)

        grads = jax.grad(loss_of)([v.value for v in variables])
    else:
        for v in variables:
            v.value.grad = None
        loss_fn(y, model(x, training=True)).backward()
        grads = [v.value.grad for v in variables]
    return {v.path: keras.ops.convert_to_numpy(g) for v, g in zip(variables, grads)}


class _FirstStep(keras.callbacks.Callback):
    """Records, for the phase-2 `fit`, the weights and gradients before its one step."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.fits = x, y, 0

    def on_train_begin(self, logs=None):
        self.fits += 1
        if self.fits == 2:
            self.grads = _gradients(self.model, self.x, self.y)
            self.before = {v.path: keras.ops.convert_to_numpy(v)
                           for v in self.model.trainable_variables}


@pytest.mark.train
def test_phase_two_update_is_minus_the_fine_tune_rate_times_the_gradient():
    # Plain SGD, one full batch per phase: the first update is -learning_rate * gradient.
    x, y = _images(n=32)
    model = _transfer(optimizer="sgd", one_cycle=False)
    probe = _FirstStep(x, y)
    fine_tune(model, (x, y), head_epochs=1, epochs=1, unfreeze="conv_3",
              learning_rate=0.1, fine_tune_learning_rate=0.01, optimizer="sgd",
              one_cycle=False, batch_size=32, callbacks=[probe], verbose=0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    after = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    assert set(after) == {"conv_3/kernel", "conv_3/bias", "output/kernel", "output/bias"}
    for path, grad in probe.grads.items():
        np.testing.assert_allclose(after[path] - probe.before[path], -0.01 * grad,
                                   rtol=2e-3, atol=1e-7)


@pytest.mark.train
def test_discriminative_learning_rates_lower_for_lower_groups():
    x, y = _images(n=32)
    model = _transfer()
    probe = _FirstStep(x, y)
    fine_tune(model, (x, y), head_epochs=1, epochs=1, unfreeze="all", learning_rate=0.1,
              fine_tune_learning_rate=0.01, optimizer="sgd", one_cycle=False, batch_size=32,
              discriminative_factor=0.5, discriminative_groups=2, callbacks=[probe], verbose=0)
    assert isinstance(model.optimizer, keras.optimizers.MultiOptimizer)
    after = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    # The head at 0.01; conv_3 (top group) at 0.005; conv_1 and conv_2 at 0.0025.
    rates = {"output": 0.01, "conv_3": 0.005, "conv_2": 0.0025, "conv_1": 0.0025}
    for path, grad in probe.grads.items():
        rate = rates[path.split("/")[0]]
        np.testing.assert_allclose(after[path] - probe.before[path], -rate * grad,
                                   rtol=2e-3, atol=1e-7)


@pytest.mark.train
def test_discriminative_one_cycle_spans_phase_two_and_survives_save_and_reload(tmp_path):
    x, y = _images()
    model = _transfer()
    fine_tune(model, (x, y), head_epochs=0, epochs=2, batch_size=16, unfreeze="conv_2",
              discriminative_factor=0.1, verbose=0)
    optimizer = model.optimizer
    schedules = [learning_rate_schedule(inner) for inner in optimizer.optimizers]
    assert sorted(s.max_learning_rate for s in schedules) == pytest.approx(
        [1e-4 * 0.01, 1e-4 * 0.1, 1e-4])  # groups: conv_2, conv_3; the head
    assert {(s.total_steps, s.start_step) for s in schedules} == {(8, 0)}
    path = tmp_path / "discriminative.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert sorted(learning_rate_schedule(inner).max_learning_rate
                  for inner in reloaded.optimizer.optimizers) == pytest.approx(
        [1e-6, 1e-5, 1e-4])
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.train
def test_learning_rate_find_sets_the_head_rate_and_phase_two_takes_a_hundredth_of_it():
    x, y = _images()
    model = _transfer(learning_rate="find")
    assert model.recipe.finds_learning_rate
    rates = _LearningRates()
    fine_tune(model, (x, y), head_epochs=2, epochs=1, batch_size=16, callbacks=[rates],
              verbose=0)
    suggestion = model.learning_rate_finder_result.suggestion
    assert suggestion != 1e-3  # not the placeholder
    head = rates.rates[0]  # a 1cycle peaking at the suggestion
    assert head[0] == pytest.approx(suggestion / 25, rel=1e-4)
    assert suggestion / 25 < max(head) <= suggestion * (1 + 1e-6)
    assert learning_rate_schedule(model.optimizer).max_learning_rate == pytest.approx(
        suggestion / 100)
    assert not model.recipe.finds_learning_rate  # the finder ran once, in phase 1 only


@pytest.mark.train
def test_history_combines_the_phases_with_a_phase_marker_and_early_stopping_per_phase():
    x, y = _images(n=32)
    x_val, y_val = _images(n=16, seed=1)
    y_val = (y_val + 1) % 3  # labels it cannot learn: val_loss rises, early stopping acts
    model = _transfer(early_stopping_patience=0, learning_rate=0.05)
    # Phase 2 at a tenth of the head's rate (the old default), high enough for its val_loss to
    # rise too: at the default hundredth it barely moves, and on Keras 3.16 neither phase stops.
    history = fine_tune(model, (x, y), (x_val, y_val), head_epochs=6, epochs=6, batch_size=32,
                        fine_tune_learning_rate=0.005, verbose=0)
    phases = history.history["phase"]
    assert phases == sorted(phases) and set(phases) == {1, 2}
    assert len(phases) < 12  # at least one phase stopped early
    assert history.epoch == list(range(len(phases)))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(history.history[key]) == len(phases)
    assert set(history.params) == {"phase_1", "phase_2", "best_weights"}


def _assert_the_heads_weights_were_restored(history, model, head_weights, head_loss, out):
    """After a failed phase 2: the model has the head's weights back, and the history and
    the log say so."""
    assert history.params["best_weights"] == {
        "monitor": "val_loss", "phase": 1, "phase_1_epoch": None, "phase_2_epoch": None,
        "value": pytest.approx(head_loss, rel=1e-5),
        "phase_1_value": pytest.approx(head_loss, rel=1e-5), "restored": True}
    for got, expected in zip(model.get_weights(), head_weights):
        np.testing.assert_array_equal(got, expected)
    assert (f"fine_tune: no epoch of phase 2 improved val_loss on the head's ({head_loss:.4f}); "
            "restored the weights phase 2 started from.") in out


@pytest.mark.train
def test_with_validation_data_fine_tune_ends_on_the_best_weights_of_both_phases(capsys):
    x, y = _images(n=64)
    validation = _images(n=32, seed=1)
    model = _transfer()
    fine_tune(model, (x, y), validation, head_epochs=2, epochs=0, verbose=0)
    head_weights = model.get_weights()
    head_loss = model.evaluate(*validation, verbose=0, return_dict=True)["loss"]
    # Phase 2 at an absurd rate: every epoch is worse than the head, so the model goes
    # back to the weights phase 2 started from, and the history and the log say so.
    history = fine_tune(model, (x, y), validation, head_epochs=0, epochs=2, learning_rate=1e4,
                        fine_tune_learning_rate=1e3, one_cycle=False, verbose=1)
    assert min(history.history["val_loss"]) > head_loss  # phase 2 did fail
    _assert_the_heads_weights_were_restored(history, model, head_weights, head_loss,
                                            capsys.readouterr().out)
    # verbose=0: the history says so all the same, and nothing is printed.
    quiet = fine_tune(model, (x, y), validation, head_epochs=0, epochs=1, learning_rate=1e4,
                      fine_tune_learning_rate=1e3, one_cycle=False, verbose=0)
    assert quiet.params["best_weights"]["phase"] == 1
    assert quiet.params["best_weights"]["restored"] and capsys.readouterr().out == ""
    # A phase 2 that improves on the head keeps its best epoch (here its last).
    model = _transfer()
    epoch_weights = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: kept.append(model.get_weights()))
    kept = []
    history = fine_tune(model, (x, y), validation, head_epochs=1, epochs=2, unfreeze=3,
                        callbacks=[epoch_weights], verbose=0)
    losses = history.history["val_loss"]
    assert losses[2] < losses[1] < losses[0]
    assert history.params["best_weights"] == {
        "monitor": "val_loss", "phase": 2, "phase_1_epoch": 0, "phase_2_epoch": 1,
        "value": pytest.approx(losses[2]), "phase_1_value": pytest.approx(losses[0], rel=1e-5),
        "restored": False}
    for got, expected in zip(model.get_weights(), kept[2]):
        np.testing.assert_array_equal(got, expected)
    # Without validation data there is nothing to compare: phase 2's last weights stay.
    history = fine_tune(model, (x, y), head_epochs=0, epochs=1, unfreeze=3, verbose=0,
                        callbacks=[epoch_weights])
    assert "best_weights" not in history.params
    for got, expected in zip(model.get_weights(), kept[-1]):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.train
def test_fine_tune_takes_tf_data_datasets():
    import tensorflow as tf

    x, y = _images()
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    valid = tf.data.Dataset.from_tensor_slices((x[:16], y[:16])).batch(8)
    model = _transfer()
    snapshots = _Snapshots()
    history = fine_tune(model, train, valid, head_epochs=1, epochs=2, unfreeze=3,
                        callbacks=[snapshots], verbose=0)
    assert history.history["phase"] == [1, 2, 2] and "val_loss" in history.history
    assert _changed_layers(snapshots.begin[1][0], snapshots.end[1][0]) == {"conv_3"}
    assert learning_rate_schedule(model.optimizer).total_steps == 2 * 4
    with pytest.raises(ValueError, match=re.escape(
            "Argument `batch_size` must be None when `train_data` is a dataset. Received: "
            "batch_size=8 (a dataset is batched already)")):
        fine_tune(model, train, batch_size=8)


@pytest.mark.train
def test_phase_two_does_not_run_after_phase_one_stops_on_nan():
    import tensorflow as tf

    x, y = _images(n=32)
    # A dataset is not checked up front, so NaN reaches the loss, through a sample
    # weight on every backend (a NaN pixel left the training loss finite on JAX).
    weights = np.ones(32, "float32")
    weights[3] = np.nan
    model = _transfer()
    base_before = _weights_by_layer(_base_of(model))
    history = fine_tune(model, tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(16),
                        head_epochs=3, epochs=3, verbose=0)
    assert history.history["phase"] == [1]
    assert not np.isfinite(history.history["loss"][-1])
    assert _changed_layers(base_before, _weights_by_layer(_base_of(model))) == set()


@pytest.mark.train
def test_fine_tune_works_on_a_plain_keras_model_with_one_nested_base():
    x, y = _images()
    base = _conv_base()
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(features))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rates = _LearningRates()
    history = fine_tune(model, (x, y), head_epochs=1, epochs=5, unfreeze=3, batch_size=32,
                        callbacks=[rates], verbose=0)
    assert history.history["phase"] == [1, 2, 2, 2, 2, 2]
    assert rates.rates[0] == [pytest.approx(1e-3)] * 2  # Keras's Adam as compiled
    # Then a 1cycle spread over the 10 steps of phase 2, peaking at a hundredth.
    assert learning_rate_schedule(model.optimizer).total_steps == 10
    assert max(rates.rates[1]) == pytest.approx(1e-5, rel=1e-5) == rates.rates[1][2]


def _same_in_training_and_inference(model, images):
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(images, training=True)),
                                  keras.ops.convert_to_numpy(model(images, training=False)))


@pytest.mark.train
def test_fine_tuned_model_saves_and_reloads_without_custom_objects(tmp_path):
    x, y = _images()
    model = build_transfer_model(_conv_base(), 3, seed=0, dropout_rate=0.0,
                                 preprocessing="mobilenet_v2", num_hidden_layers=1, units=8)
    _same_in_training_and_inference(model, x[:4])  # BatchNorm in inference mode ...
    fine_tune(model, (x, y), head_epochs=1, epochs=2, unfreeze="conv_2", batch_size=16,
              verbose=0)
    _same_in_training_and_inference(model, x[:4])  # ... also once the base is unfrozen
    path = tmp_path / "fine_tuned.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)  # safe_mode, no custom_objects
    assert type(reloaded) is keras_recipes.RecipeModel
    assert isinstance(reloaded.get_layer("preprocessing"), ApplicationPreprocessing)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
    _same_in_training_and_inference(reloaded, x[:4])
    base, reloaded_base = _base_of(model), _base_of(reloaded)
    assert [(layer.name, layer.trainable) for layer in reloaded_base.layers] == [
        (layer.name, layer.trainable) for layer in base.layers]
    assert int(reloaded.optimizer.iterations) == int(model.optimizer.iterations) == 8
    assert learning_rate_schedule(reloaded.optimizer).get_config() == \
        learning_rate_schedule(model.optimizer).get_config()
    # Training the reloaded model goes on like the original: same trainable
    # layers, BatchNorm still frozen (its moving statistics included).
    before = _weights_by_layer(reloaded_base)
    reloaded.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _changed_layers(before, _weights_by_layer(reloaded_base)) == {"conv_2", "conv_3"}


_BAD_FINE_TUNE_ARGUMENTS = [
    (dict(unfreeze=10), ValueError, "Argument `unfreeze` must be an integer in the range "
     "[1, 9]. Received: unfreeze=10"),
    (dict(unfreeze=0), ValueError, "Argument `unfreeze` must be an integer in the range [1, 9]"),
    (dict(unfreeze=1.5), ValueError, "Argument `unfreeze` must be in the range (0, 1]. "
     "Received: unfreeze=1.5"),
    (dict(unfreeze=True), TypeError, "Argument `unfreeze` must be an int (layers), a float in "
     "(0, 1] (fraction of layers), a layer name or \"all\". Received: unfreeze=True"),
    (dict(unfreeze="conv3"), ValueError, "Argument `unfreeze` must be \"all\" or the name of a "
     "layer of the base 'conv_base' to unfreeze from. Received: unfreeze='conv3'. Did you "
     "mean 'conv_3'?"),
    (dict(unfreeze=2), ValueError, "Argument `unfreeze` must be a choice of base layers with "
     "weights to train in phase 2. Received: unfreeze=2 (the chosen layers 'bn_3', 'relu_3' "
     "have none besides BatchNormalization, which stays frozen)"),
    (dict(head_epochs=-1), ValueError, "Argument `head_epochs` must be a non-negative integer. "
     "Received: head_epochs=-1"),
    (dict(head_epochs=0, epochs=0), ValueError, "Argument `epochs` must be positive when "
     "head_epochs=0. Received: epochs=0 (nothing to train)"),
    (dict(learning_rate=0), ValueError, "Argument `learning_rate` must be a number > 0 or None. "
     "Received: learning_rate=0"),
    (dict(fine_tune_learning_rate=0.01), ValueError, "Argument `fine_tune_learning_rate` must "
     "be lower than the head's learning rate (0.01). Received: fine_tune_learning_rate=0.01 "
     "(a high rate on the unfrozen base wrecks its pretrained features"),
    (dict(optimizer="rmsprp"), ValueError, "Argument `optimizer` must be one of 'sgd', "
     "'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam', 'adamax', 'nadam', 'adamw'. "
     "Received: optimizer='rmsprp'. Did you mean 'rmsprop'?"),
    (dict(discriminative_factor=1.0), ValueError, "Argument `discriminative_factor` must be in "
     "the range (0, 1) or None. Received: discriminative_factor=1.0"),
    (dict(discriminative_groups=0), ValueError, "Argument `discriminative_groups` must be a "
     "positive integer. Received: discriminative_groups=0"),
    (dict(callbacks=["early"]), TypeError, "Argument `callbacks` must be a list of "
     "keras.callbacks.Callback or None. Received: callbacks=['early']"),
    (dict(train_data="x"), TypeError, "Argument `train_data` must be a tuple (x, y) of arrays "
     "or a dataset"),
    (dict(train_data=np.zeros((4, 16, 16, 3))), TypeError, "Argument `train_data` must be a "
     "tuple (x, y) of arrays or a dataset yielding (x, y) batches (tf.data.Dataset, "
     "keras.utils.PyDataset). Received: train_data=<array of shape (4, 16, 16, 3)> (labels "
     "are needed: pass (x, y))"),
    (dict(train_data=(1, 2, 3, 4)), ValueError, "Argument `train_data` must be a tuple (x, y) "
     "or (x, y, sample_weight), or a dataset. Received: train_data=<tuple of 4 items>"),
    (dict(backup_dir=3), TypeError, "Argument `backup_dir` must be None or a folder path. "
     "Received: backup_dir=3"),
    (dict(callbacks=[keras.callbacks.BackupAndRestore("backup")]), ValueError, "Argument "
     "`callbacks` must be a list without BackupAndRestore. Received: "
     "callbacks=[BackupAndRestore] (one backup for both phases would restore phase 2's state "
     "into phase 1; pass `backup_dir=` instead, which gives each phase its own)"),
    (dict(distribution="mirrored"), TypeError, "Argument `distribution` must be None, a "
     "tf.distribute.Strategy (TensorFlow) or a keras.distribution distribution (JAX). "
     "Received: distribution='mirrored'"),
]


@pytest.mark.train
def test_fine_tune_rejects_bad_arguments_before_training():
    model = _transfer()
    flags = [layer.trainable for layer in flatten_layers(_base_of(model))]
    weights = model.get_weights()
    for kwargs, error, message in _BAD_FINE_TUNE_ARGUMENTS:
        kwargs = {"train_data": _images(n=8), "verbose": 0, **kwargs}
        with pytest.raises(error, match=re.escape(message)):
            fine_tune(model, **kwargs)
        # Nothing trained and the trainable flags are as they were.
        assert [layer.trainable for layer in flatten_layers(_base_of(model))] == flags
        for now, before in zip(model.get_weights(), weights):
            np.testing.assert_array_equal(now, before)


@pytest.mark.train
def test_discriminative_rates_need_keras_multi_optimizer(monkeypatch):
    from keras_recipes.training.fine_tune import phase_optimizers as optimizers

    monkeypatch.setattr(optimizers, "_MultiOptimizer", None)
    with pytest.raises(ValueError, match=re.escape(
            "Argument `discriminative_factor` must be None with this Keras. Received: "
            f"discriminative_factor=0.5 (Keras {keras.__version__} has no "
            "keras.optimizers.MultiOptimizer; upgrade Keras to use it)")):
        fine_tune(_transfer(), _images(n=8), discriminative_factor=0.5)


@pytest.mark.train
def test_fine_tune_explains_a_model_without_an_identifiable_base_or_head():
    x, y = _images(n=8)
    flat = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])
    flat.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a model built by `build_transfer_model`, or a model with "
            "exactly one nested base model (called as `base(x, training=False)`). Received: "
            "model='sequential' (it has no nested model)")):
        fine_tune(flat, (x, y))
    inputs = keras.Input((16, 16, 3))
    a, b = _conv_base(name="a"), _conv_base(name="b")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a(inputs), b(inputs)]))
    two = keras.Model(inputs, keras.layers.Dense(3)(pooled), name="two_bases")
    two.compile("adam", "mse")
    with pytest.raises(ValueError, match=re.escape(
            "Received: model='two_bases' (it has 2 nested models: 'a', 'b')")):
        fine_tune(two, (x, y))
    uncompiled = _transfer()
    uncompiled.compiled = False
    uncompiled.optimizer = None
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a compiled model. Received: model='transfer_model'")):
        fine_tune(uncompiled, (x, y))
    frozen_head = _transfer()
    frozen_head.get_layer("output").trainable = False
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a model with trainable weights outside its base for "
            "phase 1 (the head). Received: model='transfer_model' (every layer outside "
            "'conv_base' is frozen or has no weights)")):
        fine_tune(frozen_head, (x, y))
    assert not frozen_head.get_layer("output").trainable


# --- backup_dir: an interrupted fine_tune resumes in the phase it was in -----------------


class _Crash(keras.callbacks.Callback):
    """Kills the run after batch `batch` of epoch `epoch` of `fit` number `fit` (0: phase 1)."""

    def __init__(self, fit, epoch, batch):
        super().__init__()
        self.at, self.fits = (fit, epoch, batch), -1

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.fits, self.epoch, batch) == self.at:
            raise RuntimeError("induced crash")


class _EpochsRun(keras.callbacks.Callback):
    """Records `(phase, epoch)` for every epoch that runs (phase 2: the base is trainable)."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append((2 if _base_of(self.model).trainable else 1, epoch))


_RESUMABLE_RUN = dict(head_epochs=2, epochs=3, unfreeze=3, verbose=0)


def _resumable(backup_dir=None):
    """A transfer model with dropout (its random state must be restored too) and its data."""
    model = build_transfer_model(_conv_base((8, 8, 3)), 3, seed=0, dropout_rate=0.2,
                                 backup_dir=backup_dir)
    x, y = _images(n=48, shape=(8, 8, 3))
    return model, FixedOrderBatches(x, y, 16)


@functools.cache
def _uninterrupted_run():
    model, data = _resumable()
    history = fine_tune(model, data, **_RESUMABLE_RUN)
    return model.get_weights(), _numpy(model.optimizer.variables), history.history


@pytest.mark.train
@pytest.mark.parametrize("crash_at, epochs_run_on_resume", [
    # Killed in phase 1: phase 1 goes on from its last finished epoch, then phase 2.
    pytest.param((0, 1, 1), [(1, 1), (2, 0), (2, 1), (2, 2)], id="in_phase_1",
                 marks=pytest.mark.slow),
    # Killed in phase 2's first epoch (no epoch of it backed up): phase 2 from its start.
    pytest.param((1, 0, 1), [(2, 0), (2, 1), (2, 2)], id="in_phase_2_first_epoch",
                 marks=pytest.mark.slow),
    # Killed later in phase 2: phase 2 from its last finished epoch, phase 1 not again.
    pytest.param((1, 2, 1), [(2, 2)], id="in_phase_2"),
])
def test_an_interrupted_fine_tune_resumes_in_the_phase_it_was_in(crash_at, epochs_run_on_resume,
                                                                  tmp_path):
    weights, optimizer_state, history = _uninterrupted_run()
    backup = tmp_path / "backup"
    model, data = _resumable(backup)  # fine_tune takes the model's backup_dir
    with pytest.raises(RuntimeError, match="induced crash"):
        fine_tune(model, data, callbacks=[_Crash(*crash_at)], **_RESUMABLE_RUN)
    in_phase_2 = crash_at[0] == 1
    assert (backup / "fine_tune.json").is_file() == in_phase_2  # "phase 1 is done"
    if in_phase_2:  # another run must not pick up this one's state
        with pytest.raises(ValueError, match=re.escape(
                "Argument `backup_dir` must be a folder holding no backup, or the backup of the "
                f"same fine_tune run. Received: backup_dir={str(backup)!r} (it holds a run with "
                "epochs=3, head_epochs=2, model='transfer_model', unfreeze=3; pass the same "
                "arguments to resume it, or delete the folder to start again)")):
            fine_tune(_resumable()[0], data, backup_dir=backup, **dict(_RESUMABLE_RUN, epochs=4))

    model, data = _resumable(backup)  # a fresh process would build the same model
    epochs_run = _EpochsRun()
    resumed = fine_tune(model, data, callbacks=[epochs_run], **_RESUMABLE_RUN)

    assert epochs_run.epochs == epochs_run_on_resume
    # The history covers the whole run, the epochs before the interruption included.
    assert resumed.history["phase"] == history["phase"] == [1, 1, 2, 2, 2]
    np.testing.assert_allclose(resumed.history["loss"], history["loss"], rtol=1e-5)
    for got, expected in zip(model.get_weights(), weights):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for got, expected in zip(_numpy(model.optimizer.variables), optimizer_state):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert int(model.optimizer.iterations) == 9  # phase 2: 3 batches * 3 epochs
    assert not backup.exists()  # removed once the run finished


def test_transfer_learning_recipe_is_the_registry_form():
    import inspect

    assert keras_recipes.get_recipe("transfer_learning") is transfer_learning_recipe
    model = transfer_learning_recipe((32, 32, 3), 4, weights=None, base_kwargs={"alpha": 0.35},
                                     seed=0, num_hidden_layers=1)
    assert model.output_shape == (None, 4) and model.get_layer("hidden_1").units == 128
    assert _base_of(model).name.startswith("mobilenetv2")  # the default base
    model = transfer_learning_recipe((16, 16, 3), 3, base=_conv_base())
    assert _base_of(model).name == "conv_base"
    # What a config's `model` section may set: build_transfer_model's keyword arguments, with
    # their defaults, and a default base (the data's arguments and the recipe object aside).
    built = inspect.signature(build_transfer_model).parameters
    defaults = keras_recipes.get_recipe_spec("transfer_learning").model_defaults
    assert defaults["base"] == "MobileNetV2"
    assert set(defaults) == set(built) - {"input_shape", "num_classes", "seed", "recipe"}
    for name, parameter in built.items():
        if name in defaults and name != "base":
            assert defaults[name] == parameter.default, name
    # Vectors (a .csv file, digits) are refused before keras.applications sees them.
    with pytest.raises(ValueError, match=re.escape(
            "Argument `input_shape` must be the shape of one image, e.g. (160, 160, 3), for the "
            "keras.applications base 'MobileNetV2'. Received: input_shape=(64,) (transfer "
            "learning from a pretrained image model needs image data)")):
        transfer_learning_recipe((64,), 10, weights=None)
    with pytest.raises(TypeError, match="unexpected keyword argument 'unitz'"):
        transfer_learning_recipe((16, 16, 3), 3, base=_conv_base(), unitz=3)


@pytest.mark.slow
def test_mobilenet_v2_fine_tunes_end_to_end_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    x, y = _images(n=64, shape=(32, 32, 3))
    model = build_transfer_model("MobileNetV2", 3, **TINY_MOBILENET, seed=0)
    snapshots = _Snapshots()
    history = fine_tune(model, (x, y), head_epochs=1, epochs=1, unfreeze="block_16_expand",
                        callbacks=[snapshots], verbose=0)
    assert history.history["phase"] == [1, 2]
    changed = _changed_layers(snapshots.begin[1][0], snapshots.end[1][0])
    assert changed == {"block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1"}
    path = tmp_path / "mobilenet.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


# --- real ImageNet weights: phase 2 must not undo phase 1 (issue #17) --------------------

# The shared file beside the project (see its README); KERAS_RECIPES_MOBILENET_WEIGHTS
# names another place (a git worktree, say).
REAL_WEIGHTS = pathlib.Path(os.environ.get(
    "KERAS_RECIPES_MOBILENET_WEIGHTS", pathlib.Path(__file__).resolve().parents[2] / "shared"
    / "weights" / "mobilenet_v2_imagenet_notop.weights.h5"))


def _real_weights_or_skip():
    """Skips the test when the weights file is missing (as shared/weights/README.md asks: a
    machine without `../shared` still passes), except where KERAS_RECIPES_REQUIRE_REAL_WEIGHTS=1,
    where it fails instead: set it where the file must be there."""
    if REAL_WEIGHTS.is_file():
        return
    message = (f"real ImageNet MobileNetV2 weights not found at {REAL_WEIGHTS} (set "
               "KERAS_RECIPES_MOBILENET_WEIGHTS to their path)")
    if os.environ.get("KERAS_RECIPES_REQUIRE_REAL_WEIGHTS") == "1":
        pytest.fail(f"{message}; KERAS_RECIPES_REQUIRE_REAL_WEIGHTS=1 requires them")
    pytest.skip(message)


@functools.cache
def _real_digits():
    """scikit-learn's bundled 8 x 8 digits, upsampled to 32 x 32 x 3 pixels in 0..255:
    300 training and 150 validation images (stratified, fixed)."""
    datasets = pytest.importorskip("sklearn.datasets", reason="needs scikit-learn")
    digits = datasets.load_digits()
    images = np.kron(digits.images, np.ones((4, 4)))[..., None] * (255 / 16)
    images = np.repeat(images, 3, axis=-1).astype("float32")
    order = np.random.default_rng(0).permutation(len(images))
    train, val = order[:300], order[300:450]
    return (images[train], digits.target[train]), (images[val], digits.target[val])


def _real_model():
    keras.utils.set_random_seed(0)
    # jit_compile=False: XLA compiling MobileNetV2's training step costs more than it saves
    # in a test this short.
    return build_transfer_model("MobileNetV2", 10, input_shape=(32, 32, 3),
                                weights=str(REAL_WEIGHTS), seed=0, jit_compile=False)


def _val_accuracy(model, val):
    return float(np.mean(model.predict(val[0], verbose=0).argmax(axis=1) == val[1]))


@pytest.mark.slow  # MobileNetV2 is built, loaded and compiled for 3 fits: ~30 s on 2 cores
def test_phase_two_defaults_keep_a_real_imagenet_base_at_least_as_good_as_phase_one(capsys):
    _real_weights_or_skip()
    train, val = _real_digits()
    model = _real_model()
    history = fine_tune(model, train, validation_data=val, head_epochs=2, epochs=0, verbose=0)
    head_weights, head_accuracy = model.get_weights(), _val_accuracy(model, val)
    head_loss = model.evaluate(*val, verbose=0, return_dict=True)["loss"]

    # Phase 2 with fine_tune's defaults (rate, unfreeze, 1cycle) from those weights.
    history = fine_tune(model, train, validation_data=val, head_epochs=0, epochs=2, verbose=0)
    best = history.params["best_weights"]
    assert best["phase_1_value"] == pytest.approx(head_loss, rel=1e-5)
    last_loss = history.history["val_loss"][-1]
    assert last_loss <= head_loss  # the defaults themselves did not make it worse ...
    assert history.history["val_accuracy"][-1] >= head_accuracy
    assert best["phase"] == 2 and _val_accuracy(model, val) >= head_accuracy  # ... nor the end

    # Phase 2 forced to fail (an absurd rate on the whole base): the guard restores the
    # head's weights exactly, and the history and the log say so.
    model.set_weights(head_weights)
    history = fine_tune(model, train, validation_data=val, head_epochs=0, epochs=1,
                        learning_rate=1e3, fine_tune_learning_rate=1e2, one_cycle=False,
                        unfreeze="all", verbose=2)
    assert not history.history["val_loss"][-1] < head_loss  # it did fail (or went NaN)
    _assert_the_heads_weights_were_restored(history, model, head_weights, head_loss,
                                            capsys.readouterr().out)
    assert _val_accuracy(model, val) == head_accuracy


def test_missing_real_weights_skip_here_and_fail_where_required(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "REAL_WEIGHTS", tmp_path / "absent.weights.h5")
    monkeypatch.delenv("KERAS_RECIPES_REQUIRE_REAL_WEIGHTS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="weights not found at"):
        _real_weights_or_skip()
    monkeypatch.setenv("KERAS_RECIPES_REQUIRE_REAL_WEIGHTS", "1")
    with pytest.raises(pytest.fail.Exception, match="KERAS_RECIPES_REQUIRE_REAL_WEIGHTS=1 "
                       "requires them"):
        _real_weights_or_skip()
