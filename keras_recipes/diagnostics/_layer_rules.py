"""The layer rules of the static lint: initializers, SELU, activations, BatchNormalization.

Each rule reads the model's `LayerGraph`: Dense layers, convolutions (depthwise and
separable ones too) and recurrent layers, in functional, Sequential and subclassed
models (read as the chain of the layers they hold).
"""

from __future__ import annotations

import keras

from keras_recipes.diagnostics._graph import (
    RELU_FAMILY,
    SATURATING_ACTIVATIONS,
    activation_name,
    initializer_family,
    initializer_name,
    is_weight_layer,
    kernel_initializers,
    own_activation,
    recurrent_layer,
)
from keras_recipes.diagnostics.report import Finding

__all__ = ["DEEP_NETWORK_WEIGHT_LAYERS", "RULES", "lint_layers"]

#: The layer rules: name -> (severity, one-line summary).
RULES = {
    "initializer_mismatch": (
        "warning",
        "initializer not matched to the activation (ReLU family with Glorot, SELU without "
        "LeCun, a hidden tanh/sigmoid with He)",
    ),
    "selu_with_dropout": ("warning", "plain Dropout in a SELU network"),
    "selu_with_regularization": ("warning", "L1/L2 regularization in a SELU network"),
    "selu_with_batch_normalization": ("warning", "BatchNormalization in a SELU network"),
    "selu_with_skip_connection": ("warning", "skip connection or merge in a SELU network"),
    "selu_with_recurrent_layer": ("warning", "a recurrent layer in a SELU network"),
    "saturating_activation_in_deep_network": (
        "warning",
        "sigmoid/tanh in a hidden layer of a deep network",
    ),
    "bias_before_batch_normalization": ("info", "a bias right before BatchNormalization"),
    "batch_normalization_after_activation": (
        "info",
        "BatchNormalization after the activation instead of before it",
    ),
}

#: From this many layers with weights a network counts as deep.
DEEP_NETWORK_WEIGHT_LAYERS = 5


def _finding(rule, layer, message, why, fix, evidence=None):
    name = getattr(layer, "name", layer)
    return Finding(rule, RULES[rule][0], name, message, why, fix, dict(evidence or {}))


def _kernels(graph):
    """`(layer, activation, [(argument, initializer)])` of each layer with a kernel."""
    for layer in graph.layers:
        if is_weight_layer(layer):
            yield layer, graph.effective_activation(layer), kernel_initializers(layer)
            continue
        rnn = recurrent_layer(layer)
        if rnn is not None:
            # The input kernel feeds the cell's activation; the recurrent kernel
            # (orthogonal by default) keeps the state's norm and is not checked.
            yield layer, activation_name(rnn.activation), [
                ("kernel_initializer", rnn.kernel_initializer)
            ]


def _lint_initializers(graph, findings):
    """The chapter's table: He for the ReLU family, LeCun for SELU, Glorot for tanh and
    the logistic sigmoid. Only what breaks the variance is reported: Glorot under a
    ReLU-family unit (the signal halves at each layer), anything but LeCun under SELU
    (no fixed point), He under a hidden tanh/sigmoid (twice the variance pushes the units
    into saturation). LeCun under tanh is left alone: it is Glorot's fan-in form, the one
    LeCun et al. (1998) derived for tanh, and equal to Glorot for square layers. A
    saturating output layer is not checked: one layer's scale does not compound.
    """
    for layer, activation, initializers in _kernels(graph):
        families = {argument: initializer_family(init) for argument, init in initializers}
        if activation in RELU_FAMILY:
            wrong = [argument for argument, family in families.items() if family == "glorot"]
        elif activation == "selu":
            wrong = [argument for argument, family in families.items() if family != "lecun"]
        elif activation in SATURATING_ACTIVATIONS and not graph.is_output(layer):
            wrong = [argument for argument, family in families.items() if family == "he"]
        else:
            continue
        if not wrong:
            continue
        init = initializer_name(dict(initializers)[wrong[0]])
        if activation in SATURATING_ACTIVATIONS:
            findings.append(_finding(
                "initializer_mismatch", layer,
                f"{activation} activation with {init} initialization",
                "He initialization doubles the variance to make up for the half of its "
                "inputs a ReLU unit zeroes; a tanh or sigmoid unit zeroes none, so with He "
                "its inputs grow layer after layer into the flat ends of the curve, where "
                "the gradient vanishes. Glorot initialization keeps the variance of "
                "tanh/sigmoid units (Glorot & Bengio, 2010).",
                f"Use {_arguments(wrong, 'glorot_normal')} (or glorot_uniform, Keras's "
                f"default) with activation=\"{activation}\".",
                {"activation": activation, "initializer": init},
            ))
        elif activation == "selu":
            findings.append(_finding(
                "initializer_mismatch", layer,
                f"SELU activation with {init} initialization",
                "SELU self-normalises (activations keep mean 0 and std 1 through the "
                "layers) only with LeCun normal initialization; other initializations let "
                "the activations drift and the network stops self-normalising.",
                f"Use {_arguments(wrong, 'lecun_normal')} with activation=\"selu\".",
                {"activation": activation, "initializer": init},
            ))
        else:
            findings.append(_finding(
                "initializer_mismatch", layer,
                f"{activation} activation with {init} initialization",
                "Glorot initialization keeps the variance of linear/tanh/sigmoid units; "
                "ReLU-family units zero (or shrink) half of their inputs, so with Glorot "
                "the signal and the gradients shrink layer after layer.",
                f"Use {_arguments(wrong, 'he_normal')} (He initialization) for ReLU, leaky "
                "ReLU, ELU, GELU, Swish and their variants.",
                {"activation": activation, "initializer": init},
            ))


def _arguments(names, value):
    return " and ".join(f"{name}=\"{value}\"" for name in names)


def _regularizers(layer):
    return [
        name
        for name in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                     "depthwise_regularizer", "pointwise_regularizer", "embeddings_regularizer")
        if getattr(layer, name, None) is not None
    ]


def _lint_selu(graph, findings):
    selu_layers = [
        layer for layer in graph.layers
        if isinstance(layer, keras.layers.Layer) and (
            graph.effective_activation(layer) == "selu"
            and (is_weight_layer(layer) or own_activation(layer) == "selu")
            or recurrent_layer(layer) is not None
            and activation_name(recurrent_layer(layer).activation) == "selu"
        )
    ]
    if not selu_layers:
        return
    why_tail = (
        "Self-normalisation (Klambauer et al., 2017) holds only for a plain stack of "
        "Dense layers with SELU, LeCun normal initialization and standardised inputs."
    )
    for layer in graph.layers:
        if isinstance(layer, keras.layers.Dropout):
            findings.append(_finding(
                "selu_with_dropout", layer,
                f"plain {type(layer).__name__} in a SELU network",
                "Dropout sets units to 0 and rescales the others, which changes the mean and "
                "variance of the activations. " + why_tail,
                "Use keras.layers.AlphaDropout, which keeps mean and variance.",
            ))
        if isinstance(layer, keras.layers.BatchNormalization):
            findings.append(_finding(
                "selu_with_batch_normalization", layer,
                "BatchNormalization in a SELU network",
                "SELU already normalises the activations; BatchNormalization fights the "
                "fixed point and adds noise and cost. " + why_tail,
                "Remove the BatchNormalization layers (or use ELU/ReLU with BatchNorm "
                "instead of SELU).",
            ))
        regularizers = _regularizers(layer) if isinstance(layer, keras.layers.Layer) else []
        if regularizers:
            findings.append(_finding(
                "selu_with_regularization", layer,
                f"{', '.join(regularizers)} in a SELU network",
                "L1/L2 penalties pull the weights away from the variance LeCun initialization "
                "set up, and the activations stop self-normalising. " + why_tail,
                "Regularise a SELU network with AlphaDropout (or max-norm) instead of L1/L2.",
                {"regularizers": regularizers},
            ))
        if graph.is_skip(layer):
            findings.append(_finding(
                "selu_with_skip_connection", layer,
                f"{type(layer).__name__} joins branches in a SELU network",
                "Adding or concatenating branches changes the mean and variance of the "
                "activations, so they no longer stay at the SELU fixed point. " + why_tail,
                "Keep a SELU network sequential, or use ELU/ReLU + BatchNorm for "
                "architectures with skip connections.",
            ))
        if recurrent_layer(layer) is not None:
            findings.append(_finding(
                "selu_with_recurrent_layer", layer,
                f"recurrent layer {type(layer).__name__} in a SELU network",
                "A recurrent layer feeds its output back into itself at every time step, so "
                "the network is not sequential and nothing keeps its activations at the "
                "SELU fixed point. " + why_tail,
                "Use the recurrent layer with its default tanh activation (and "
                "LayerNormalization inside a custom cell if needed); keep SELU for plain "
                "Dense stacks.",
            ))


def _lint_saturating(graph, findings, depth):
    if depth < DEEP_NETWORK_WEIGHT_LAYERS:
        return
    for layer in graph.layers:
        if not is_weight_layer(layer) or graph.is_output(layer):
            continue
        activation = graph.effective_activation(layer)
        if activation in SATURATING_ACTIVATIONS:
            findings.append(_finding(
                "saturating_activation_in_deep_network", layer,
                f"{activation} in a hidden layer of a network with {depth} layers with weights",
                f"{activation} saturates: for large inputs its derivative is close to 0, and "
                "through many layers the gradients of the lower layers vanish (Glorot & "
                "Bengio, 2010).",
                "Use a non-saturating activation (ELU or ReLU with He initialization, or "
                "SELU with LeCun normal) in the hidden layers; keep sigmoid/softmax for the "
                "output.",
                {"activation": activation, "weight_layers": depth},
            ))


def _layers_feeding_batch_normalization(graph):
    """`(layer, normalization)` for each layer whose output goes to BatchNormalization
    layers only, `normalization` the first of them."""
    for layer in graph.layers:
        successors = graph.successors.get(id(layer), [])
        if successors and all(isinstance(s, keras.layers.BatchNormalization)
                              for s in successors):
            yield layer, successors[0]


def _lint_bias_before_batch_normalization(graph, findings):
    for layer, normalization in _layers_feeding_batch_normalization(graph):
        if (is_weight_layer(layer) and getattr(layer, "use_bias", False)
                and own_activation(layer) == "linear"):
            findings.append(_finding(
                "bias_before_batch_normalization", layer,
                f"{type(layer).__name__} with a bias feeds BatchNormalization "
                f"'{normalization.name}'",
                "BatchNormalization subtracts the batch mean, which cancels the bias; its own "
                "offset (beta) already plays that role, so the bias is wasted parameters.",
                "Create the layer with use_bias=False.",
            ))


def _lint_batch_normalization_after_activation(graph, findings):
    for layer, normalization in _layers_feeding_batch_normalization(graph):
        activation = own_activation(layer)
        if activation not in (None, "linear", "softmax", "selu"):  # SELU: its own rule
            findings.append(_finding(
                "batch_normalization_after_activation", layer,
                f"BatchNormalization '{normalization.name}' normalises the output of the "
                f"{activation} activation",
                "The authors of BatchNormalization (Ioffe & Szegedy, 2015) put it between "
                "the layer and its activation: the activation then works on inputs with "
                "mean 0 and std 1 and the layer needs no bias. After the activation it "
                "undoes what the activation shaped (e.g. re-centres ReLU outputs).",
                "Create the layer without activation and with use_bias=False, then "
                "BatchNormalization, then the activation: Dense(units, use_bias=False) -> "
                "BatchNormalization() -> Activation(\"relu\").",
                {"activation": activation},
            ))


def lint_layers(graph, depth):
    """The findings of every layer rule; `depth` is the number of layers with weights."""
    findings = []
    _lint_initializers(graph, findings)
    _lint_selu(graph, findings)
    _lint_saturating(graph, findings, depth)
    _lint_bias_before_batch_normalization(graph, findings)
    _lint_batch_normalization_after_activation(graph, findings)
    return findings
