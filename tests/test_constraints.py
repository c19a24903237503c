"""apply_max_norm: max-norm with the right axes for each layer type."""

import re

import keras
import numpy as np
import pytest

from keras_recipes.constraints import apply_max_norm

layers = keras.layers
BOUND = 1.5
BIG = keras.initializers.RandomNormal(stddev=3.0, seed=0)


# Each case: a layer factory with large initial kernels, the input shape, and the
# layout of each kernel it owns: {variable path suffix: the axes that index OUTPUT
# units} -- one incoming weight vector per combination of those axes.
CASES = {
    "Dense": (lambda: layers.Dense(5, kernel_initializer=BIG), (7,),
              {"kernel": (1,)}),
    "EinsumDense": (lambda: layers.EinsumDense("ab,bcd->acd", output_shape=(3, 4),
                                               kernel_initializer=BIG), (6,),
                    {"kernel": (1, 2)}),
    "Conv1D": (lambda: layers.Conv1D(4, 3, kernel_initializer=BIG), (9, 3),
               {"kernel": (2,)}),
    "Conv2D": (lambda: layers.Conv2D(4, 3, kernel_initializer=BIG), (7, 7, 3),
               {"kernel": (3,)}),
    "Conv2D_groups": (lambda: layers.Conv2D(4, 3, groups=2, kernel_initializer=BIG),
                      (7, 7, 4), {"kernel": (3,)}),
    "Conv2D_channels_first": (
        lambda: layers.Conv2D(4, 3, data_format="channels_first", kernel_initializer=BIG),
        (3, 7, 7), {"kernel": (3,)}),
    "Conv3D": (lambda: layers.Conv3D(3, 2, kernel_initializer=BIG), (5, 5, 5, 2),
               {"kernel": (4,)}),
    "Conv1DTranspose": (lambda: layers.Conv1DTranspose(4, 3, kernel_initializer=BIG),
                        (6, 3), {"kernel": (1,)}),
    "Conv2DTranspose": (lambda: layers.Conv2DTranspose(4, 3, kernel_initializer=BIG),
                        (5, 5, 3), {"kernel": (2,)}),
    "Conv3DTranspose": (lambda: layers.Conv3DTranspose(2, 2, kernel_initializer=BIG),
                        (4, 4, 4, 3), {"kernel": (3,)}),
    "DepthwiseConv1D": (lambda: layers.DepthwiseConv1D(3, depth_multiplier=2,
                                                       depthwise_initializer=BIG),
                        (8, 3), {"kernel": (1, 2)}),
    "DepthwiseConv2D": (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2,
                                                       depthwise_initializer=BIG),
                        (6, 6, 3), {"kernel": (2, 3)}),
    "SeparableConv1D": (lambda: layers.SeparableConv1D(4, 3, depth_multiplier=2,
                                                       depthwise_initializer=BIG,
                                                       pointwise_initializer=BIG),
                        (8, 3), {"depthwise_kernel": (1, 2), "pointwise_kernel": (2,)}),
    "SeparableConv2D": (lambda: layers.SeparableConv2D(4, 3, depthwise_initializer=BIG,
                                                       pointwise_initializer=BIG),
                        (6, 6, 3), {"depthwise_kernel": (2, 3), "pointwise_kernel": (3,)}),
    "SimpleRNN": (lambda: layers.SimpleRNN(4, kernel_initializer=BIG,
                                           recurrent_initializer=BIG), (5, 3),
                  {"kernel": (1,), "recurrent_kernel": (1,)}),
    "LSTM": (lambda: layers.LSTM(4, kernel_initializer=BIG, recurrent_initializer=BIG),
             (5, 3), {"kernel": (1,), "recurrent_kernel": (1,)}),
    "GRU": (lambda: layers.GRU(4, kernel_initializer=BIG, recurrent_initializer=BIG),
            (5, 3), {"kernel": (1,), "recurrent_kernel": (1,)}),
    "ConvLSTM1D": (lambda: layers.ConvLSTM1D(2, 3, kernel_initializer=BIG,
                                             recurrent_initializer=BIG), (3, 6, 2),
                   {"kernel": (2,), "recurrent_kernel": (2,)}),
    "Bidirectional": (lambda: layers.Bidirectional(
        layers.LSTM(3, kernel_initializer=BIG, recurrent_initializer=BIG)), (5, 3),
        {"kernel": (1,), "recurrent_kernel": (1,)}),
    "TimeDistributed": (lambda: layers.TimeDistributed(layers.Dense(4, kernel_initializer=BIG)),
                        (3, 5), {"kernel": (1,)}),
}


RECURRENT = {"SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "Bidirectional"}
EFFECT_CASES = [
    pytest.param(case, marks=pytest.mark.slow) if case in RECURRENT else case for case in CASES
]


def _unit_norms(kernel, unit_axes):
    """Norm of each output unit's incoming weights: reduce over the other axes."""
    other = tuple(a for a in range(kernel.ndim) if a not in unit_axes)
    return np.sqrt((kernel.astype("float64") ** 2).sum(axis=other))


def _model(case):
    factory, input_shape, _ = CASES[case]
    inputs = keras.Input(input_shape)
    x = factory()(inputs)
    outputs = layers.Dense(1, name="head")(layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def _kernels(model, layout):
    """(path, value, unit axes) of every constrained kernel, by variable name."""
    found = []
    for variable in model.weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name in layout and not variable.path.startswith("head"):
            found.append((variable.path, variable.numpy(), layout[name]))
    assert found
    return found


def _train(model, steps=2, learning_rate=5.0):
    rng = np.random.default_rng(0)
    shape = (16,) + tuple(model.inputs[0].shape[1:])
    x = rng.normal(size=shape).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32") * 100
    # TensorFlow's own CPU kernels compute a convolution's gradient only for channels-last
    # data ("Conv2DCustomBackpropFilterOp only supports NHWC", TensorFlow 2.21); XLA's
    # handle both layouts, so a channels-first model trains there with XLA.
    channels_first = any(getattr(layer, "data_format", None) == "channels_first"
                         for layer in model.layers)
    model.compile(keras.optimizers.SGD(learning_rate, clipnorm=1e3), "mse",
                  jit_compile=True if channels_first else "auto")
    model.fit(x, y, epochs=steps, batch_size=16, verbose=0)


@pytest.mark.train
@pytest.mark.parametrize("case", EFFECT_CASES)
def test_every_unit_bounded_after_training(case):
    layout = CASES[case][2]
    model = apply_max_norm(_model(case), BOUND, exclude=["head"])
    _train(model)
    for path, kernel, unit_axes in _kernels(model, layout):
        norms = _unit_norms(kernel, unit_axes)
        assert norms.max() <= BOUND + 1e-6, path
        # A projection onto the ball, not a shrinking: large units end on the bound.
        assert norms.max() == pytest.approx(BOUND, abs=1e-4), path

    baseline = _model(case)
    _train(baseline)
    exceeded = [_unit_norms(k, axes).max() > BOUND for _, k, axes in _kernels(baseline, layout)]
    assert all(exceeded)


@pytest.mark.parametrize("case", list(CASES))
def test_constraint_on_layer_and_variable(case):
    model = apply_max_norm(_model(case), BOUND, exclude=["head"])
    layout = CASES[case][2]
    constrained = [v for v in model.weights if v.constraint is not None]
    names = sorted(v.path.rsplit("/", 1)[-1] for v in constrained)
    multiplicity = 2 if case == "Bidirectional" else 1
    assert names == sorted(list(layout) * multiplicity)
    for variable in constrained:
        assert isinstance(variable.constraint, keras.constraints.MaxNorm)
        assert variable.constraint.max_value == BOUND
    assert model.get_layer("head").kernel.constraint is None


def test_axes_match_keras_layouts():
    conv = _model("Conv2D").layers[1]
    apply_max_norm(conv)
    assert conv.kernel_constraint.axis == (0, 1, 2)
    dense = layers.Dense(3)
    apply_max_norm(dense)
    assert dense.kernel_constraint.axis == 0  # keras.constraints.MaxNorm's own default
    transpose = _model("Conv2DTranspose").layers[1]
    apply_max_norm(transpose)
    assert transpose.kernel_constraint.axis == (0, 1, 3)


def test_setting_layer_attribute_alone_does_nothing_in_keras3():
    """Why apply_max_norm also sets `variable.constraint`."""
    model = _model("Dense")
    model.layers[1].kernel_constraint = keras.constraints.MaxNorm(BOUND, axis=0)
    _train(model)
    assert _unit_norms(model.layers[1].kernel.numpy(), (1,)).max() > BOUND


def test_after_compiled_training_and_resumed():
    model = _model("Conv2D")
    _train(model, steps=1)  # the train function is traced without constraints
    apply_max_norm(model, BOUND, exclude=["head"])
    _train(model, steps=1)
    assert _unit_norms(model.layers[1].kernel.numpy(), (3,)).max() <= BOUND + 1e-6


def test_unbuilt_sequential():
    model = keras.Sequential([layers.Dense(4, kernel_initializer=BIG), layers.Dense(1)])
    apply_max_norm(model, BOUND)
    model.build((None, 6))
    assert model.layers[0].kernel.constraint is model.layers[0].kernel_constraint
    _train(model)
    assert _unit_norms(model.layers[0].kernel.numpy(), (1,)).max() <= BOUND + 1e-6


def test_save_load_keeps_constraints(tmp_path):
    model = apply_max_norm(_model("SeparableConv2D"), BOUND, exclude=["head"])
    model.compile("sgd", "mse")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.layers[1]
    assert layer.depthwise_constraint.get_config() == {"max_value": BOUND, "axis": [0, 1]}
    assert layer.pointwise_constraint.max_value == BOUND
    assert layer.depthwise_kernel.constraint is not None
    _train(loaded)
    assert _unit_norms(layer.depthwise_kernel.numpy(), (2, 3)).max() <= BOUND + 1e-6
    assert _unit_norms(layer.pointwise_kernel.numpy(), (3,)).max() <= BOUND + 1e-6


def test_nested_frozen_base_skipped_by_default():
    base = keras.Sequential([keras.Input((6,)), layers.Dense(4, kernel_initializer=BIG)],
                            name="base")
    base.trainable = False
    inputs = keras.Input((6,))
    outputs = layers.Dense(1, kernel_initializer=BIG, name="head")(base(inputs, training=False))
    model = keras.Model(inputs, outputs)
    apply_max_norm(model, BOUND)
    assert base.layers[0].kernel_constraint is None
    assert model.get_layer("head").kernel.constraint is not None
    apply_max_norm(model, BOUND, trainable_only=False)
    assert base.layers[0].kernel.constraint is not None


def test_exclude_nested_model_by_name():
    inner = keras.Sequential([keras.Input((6,)), layers.Dense(4)], name="inner")
    inputs = keras.Input((6,))
    model = keras.Model(inputs, layers.Dense(1, name="head")(inner(inputs)))
    apply_max_norm(model, exclude=["inner"])
    assert inner.layers[0].kernel_constraint is None
    assert model.get_layer("head").kernel_constraint is not None


def test_layers_without_kernels_are_left_alone():
    inputs = keras.Input((5,), dtype="int32")
    x = layers.Embedding(10, 4)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.PReLU()(x)
    x = layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, layers.Dense(2)(x))
    apply_max_norm(model)
    constrained = [v.path for v in model.weights if v.constraint is not None]
    assert len(constrained) == 1 and constrained[0].endswith("kernel")


def test_reapplying_replaces_the_bound():
    model = apply_max_norm(_model("Dense"), 3.0)
    apply_max_norm(model, BOUND)
    assert model.layers[1].kernel.constraint.max_value == BOUND


class Custom(layers.Layer):
    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 2), name="kernel")

    def call(self, x):
        return x @ self.kernel


def test_unknown_kernel_layouts_raise_or_skip():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, Custom(name="custom")(inputs), name="m")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a model whose kernels apply_max_norm knows how to "
            "constrain. Received: model='m' (layer `custom` of type Custom has a kernel of "
            "unknown layout). Pass exclude=['custom'] or on_unsupported=\"skip\"")):
        apply_max_norm(model)
    apply_max_norm(model, on_unsupported="skip")
    assert model.layers[1].kernel.constraint is None
    apply_max_norm(model, exclude=["custom"])

    tokens = keras.Input((3, 8))
    attention = keras.Model(tokens, layers.MultiHeadAttention(2, 4, name="mha")(tokens, tokens))
    with pytest.raises(ValueError, match=re.escape("(layer `mha` of type MultiHeadAttention")):
        apply_max_norm(attention)


def test_existing_other_constraint_is_not_silently_replaced():
    inputs = keras.Input((4,))
    layer = layers.Dense(2, kernel_constraint="non_neg", name="positive")
    model = keras.Model(inputs, layer(inputs), name="m")
    with pytest.raises(ValueError, match=re.escape(
            "Argument `model` must be a model whose constrained layers have no constraint "
            "other than MaxNorm. Received: model='m' (layer `positive` has "
            "kernel_constraint=NonNeg, which apply_max_norm would replace). Pass "
            "exclude=['positive'] or remove that constraint first")):
        apply_max_norm(model)
    assert isinstance(layer.kernel_constraint, keras.constraints.NonNeg)


def test_bad_arguments():
    model = _model("Dense")
    cases = [
        (TypeError, "Argument `model` must be a keras.Model or keras.layers.Layer. "
                    "Received: model='m'", dict(model="m")),
        (ValueError, "Argument `max_value` must be a number > 0. Received: max_value=0.0",
         dict(max_value=0)),
        (TypeError, "Argument `max_value` must be a number > 0. Received: max_value='2'",
         dict(max_value="2")),
        (ValueError, "Argument `exclude` must be the name of a layer of the model. "
                     "Received: exclude='haed'. Did you mean 'head'?", dict(exclude=["haed"])),
        (TypeError, "Argument `exclude` must be a list of layer names or None. "
                    "Received: exclude='head'", dict(exclude="head")),
        (ValueError, "Argument `on_unsupported` must be one of 'raise', 'skip'. "
                     "Received: on_unsupported='ignore'", dict(on_unsupported="ignore")),
        (TypeError, "Argument `trainable_only` must be a bool (True or False). "
                    "Received: trainable_only=1", dict(trainable_only=1)),
    ]
    for error, message, kwargs in cases:
        kwargs.setdefault("model", model)
        with pytest.raises(error, match=re.escape(message)):
            apply_max_norm(**kwargs)
