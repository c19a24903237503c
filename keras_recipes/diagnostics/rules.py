"""The static lint of `diagnose`: the chapter's cautions, checked on the model alone.

`STATIC_RULES` is the registry of the rules (name -> severity and one-line summary):
every finding takes its severity from it, and the tests derive their coverage
from it. `lint(model)` runs every rule.
"""

from __future__ import annotations

import inspect

import keras
from keras import ops

from keras_recipes import _keras_internals as internals
from keras_recipes.diagnostics._graph import (
    RELU_FAMILY,
    SATURATING_ACTIVATIONS,
    LayerGraph,
    all_layers,
    count_weight_layers,
    initializer_family,
    initializer_name,
    is_weight_layer,
    own_activation,
)
from keras_recipes.diagnostics.report import Finding

__all__ = ["DEEP_NETWORK_WEIGHT_LAYERS", "STATIC_RULES", "lint"]

#: Static rules: name -> (severity, one-line summary).
STATIC_RULES = {
    "initializer_mismatch": (
        "warning",
        "initializer not matched to the activation (ReLU family with Glorot, SELU without LeCun)",
    ),
    "selu_with_dropout": ("warning", "plain Dropout in a SELU network"),
    "selu_with_regularization": ("warning", "L1/L2 regularization in a SELU network"),
    "selu_with_batch_normalization": ("warning", "BatchNormalization in a SELU network"),
    "selu_with_skip_connection": ("warning", "skip connection or merge in a SELU network"),
    "saturating_activation_in_deep_network": (
        "warning",
        "sigmoid/tanh in a hidden layer of a deep network",
    ),
    "bias_before_batch_normalization": ("info", "a bias right before BatchNormalization"),
    "clipvalue_instead_of_clipnorm": ("warning", "`clipvalue` where `clipnorm` is meant"),
    "adagrad_on_deep_network": ("warning", "AdaGrad on a deep network"),
    "trainable_pretrained_base": (
        "warning",
        "a (pretrained) base model is trainable at a from-scratch learning rate",
    ),
    "pretrained_base_training_mode": (
        "warning",
        "a base model with BatchNormalization is called without `training=False`",
    ),
    "learning_rate_too_large": ("warning", "learning rate too large for the optimizer"),
}

#: From this many layers with weights a network counts as deep.
DEEP_NETWORK_WEIGHT_LAYERS = 5

# Peak learning rates above which an optimizer family rarely trains well.
_LEARNING_RATE_LIMITS = (
    ("Lion", 3e-3),
    ("Adam", 3e-2),
    ("AdamW", 3e-2),
    ("Adamax", 3e-2),
    ("Nadam", 3e-2),
    ("Lamb", 3e-2),
    ("RMSprop", 3e-2),
    ("SGD", 1.0),
    ("Adagrad", 1.0),
)


def _peak_learning_rate(optimizer):
    """The largest learning rate the optimizer will use, as far as can be told."""
    lr = internals.learning_rate_object(optimizer)
    values = []
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        values.append(float(ops.convert_to_numpy(lr(0))))
        for attribute in ("max_learning_rate", "initial_learning_rate", "warmup_target",
                          "maximal_learning_rate"):
            value = getattr(lr, attribute, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.append(float(value))
    elif isinstance(lr, keras.Variable):
        values.append(float(lr.numpy()))
    elif callable(lr):
        values.append(float(ops.convert_to_numpy(lr())))
    else:
        values.append(float(lr))
    return max(values)


def _default_learning_rate(optimizer):
    inner = internals.inner_optimizer(optimizer)
    for cls in type(inner).__mro__:
        try:
            parameter = inspect.signature(cls.__init__).parameters.get("learning_rate")
        except (TypeError, ValueError):  # pragma: no cover - builtins
            continue
        if parameter is not None and isinstance(parameter.default, float):
            return parameter.default
    return 1e-3


def _learning_rate_limit(optimizer):
    inner = internals.inner_optimizer(optimizer)
    names = [cls.__name__ for cls in type(inner).__mro__]
    for name, limit in _LEARNING_RATE_LIMITS:
        if name in names:
            return name, limit
    return None, None


# ---------------------------------------------------------------------------
# Static lint
# ---------------------------------------------------------------------------


def _finding(rule, layer, message, why, fix, evidence=None):
    severity = STATIC_RULES[rule][0]
    name = getattr(layer, "name", layer)
    return Finding(rule, severity, name, message, why, fix, dict(evidence or {}))


def _lint_initializers(graph, findings):
    for layer in graph.layers:
        if not is_weight_layer(layer):
            continue
        activation = graph.effective_activation(layer)
        family = initializer_family(layer.kernel_initializer)
        init = initializer_name(layer.kernel_initializer)
        if activation in RELU_FAMILY and family == "glorot":
            findings.append(_finding(
                "initializer_mismatch", layer,
                f"{activation} activation with {init} initialization",
                "Glorot initialization keeps the variance of linear/tanh/sigmoid units; "
                "ReLU-family units zero (or shrink) half of their inputs, so with Glorot the "
                "signal and the gradients shrink layer after layer.",
                "Use kernel_initializer=\"he_normal\" (He initialization) for ReLU, leaky "
                "ReLU, ELU, GELU, Swish and their variants.",
                {"activation": activation, "initializer": init},
            ))
        elif activation == "selu" and family != "lecun":
            findings.append(_finding(
                "initializer_mismatch", layer,
                f"SELU activation with {init} initialization",
                "SELU self-normalises (activations keep mean 0 and std 1 through the layers) "
                "only with LeCun normal initialization; other initializations let the "
                "activations drift and the network stops self-normalising.",
                "Use kernel_initializer=\"lecun_normal\" with activation=\"selu\".",
                {"activation": activation, "initializer": init},
            ))


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
        if isinstance(layer, keras.layers.Layer) and graph.effective_activation(layer) == "selu"
        and (is_weight_layer(layer) or own_activation(layer) == "selu")
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


def _lint_bias_before_batch_normalization(graph, findings):
    for layer in graph.layers:
        if not is_weight_layer(layer) or not getattr(layer, "use_bias", False):
            continue
        if own_activation(layer) != "linear":
            continue
        successors = graph.successors.get(id(layer), [])
        if successors and all(
            isinstance(s, keras.layers.BatchNormalization) for s in successors
        ):
            findings.append(_finding(
                "bias_before_batch_normalization", layer,
                f"{type(layer).__name__} with a bias feeds BatchNormalization "
                f"'{successors[0].name}'",
                "BatchNormalization subtracts the batch mean, which cancels the bias; its own "
                "offset (beta) already plays that role, so the bias is wasted parameters.",
                "Create the layer with use_bias=False.",
            ))


def _lint_optimizer(model, findings, depth):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not isinstance(optimizer, keras.optimizers.Optimizer):
        return
    inner = internals.inner_optimizer(optimizer)
    if (
        getattr(inner, "clipvalue", None) is not None
        and getattr(inner, "clipnorm", None) is None
        and getattr(inner, "global_clipnorm", None) is None
    ):
        findings.append(_finding(
            "clipvalue_instead_of_clipnorm", None,
            f"{type(inner).__name__}(clipvalue={inner.clipvalue}) clips each gradient "
            "component separately",
            "Clipping each component can change the direction of the gradient vector "
            "(e.g. [0.9, 100] becomes [0.9, 1.0]); clipping by norm keeps the direction and "
            "only limits the step.",
            f"Use clipnorm={inner.clipvalue} (or global_clipnorm) instead of clipvalue.",
            {"clipvalue": inner.clipvalue},
        ))
    if isinstance(inner, keras.optimizers.Adagrad) and depth >= DEEP_NETWORK_WEIGHT_LAYERS:
        findings.append(_finding(
            "adagrad_on_deep_network", None,
            f"Adagrad on a network with {depth} layers with weights",
            "AdaGrad divides by the sum of all past squared gradients, so its learning rate "
            "decays too fast and training of deep networks often stops before reaching the "
            "optimum.",
            "Use Adam, Nadam or RMSprop (which forget old gradients), or SGD with momentum.",
            {"weight_layers": depth},
        ))
    name, limit = _learning_rate_limit(optimizer)
    if limit is not None:
        try:
            peak = _peak_learning_rate(optimizer)
        except Exception:  # a custom callable we cannot evaluate here
            peak = None
        if peak is not None and peak > limit:
            findings.append(_finding(
                "learning_rate_too_large", None,
                f"peak learning rate {peak:.3g} for {type(inner).__name__}",
                f"{name}-type optimizers rarely train well above a learning rate of {limit:g}: "
                "the updates overshoot, the loss oscillates or turns NaN.",
                "Lower the learning rate (Keras's default for this optimizer is "
                f"{_default_learning_rate(optimizer):g}), or pick it with "
                "keras_recipes.find_learning_rate(model, x, y).",
                {"learning_rate": peak, "limit": limit},
            ))


def _contains_batch_normalization(model):
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in all_layers(model))


def _lint_bases(model, graph, findings):
    optimizer = getattr(model, "optimizer", None)
    compiled_with_optimizer = isinstance(optimizer, keras.optimizers.Optimizer)
    for layer in graph.layers:
        if not isinstance(layer, keras.Model):
            continue
        if _contains_batch_normalization(layer):
            nodes = graph.nodes.get(id(layer), [])
            inference = bool(nodes) and all(
                node.arguments.kwargs.get("training", None) is False for node in nodes
            )
            if not inference:
                findings.append(_finding(
                    "pretrained_base_training_mode", layer,
                    f"base model '{layer.name}' contains BatchNormalization and is called "
                    "without training=False",
                    "Once the base is unfrozen for fine-tuning, its BatchNormalization layers "
                    "run in training mode: they normalise with the statistics of each new "
                    "batch and overwrite the moving statistics learned in pretraining, which "
                    "wrecks the pretrained features.",
                    "Build the model functionally and call the base as "
                    "`x = base(x, training=False)` (and keep BatchNormalization layers frozen "
                    "when fine-tuning).",
                ))
        if compiled_with_optimizer and layer.trainable_weights:
            try:
                peak = _peak_learning_rate(optimizer)
            except Exception:
                continue
            default = _default_learning_rate(optimizer)
            if peak >= default:
                findings.append(_finding(
                    "trainable_pretrained_base", layer,
                    f"base model '{layer.name}' has {len(layer.trainable_weights)} trainable "
                    f"weights and the learning rate is {peak:.3g}",
                    "If this base was pretrained: training it together with a new, randomly "
                    "initialised head at a from-scratch learning rate sends large gradients "
                    "into the pretrained layers and destroys what they learned (phase one of "
                    "transfer learning trains the head only).",
                    "Phase one: set base.trainable = False and recompile. Phase two: unfreeze "
                    f"the top layers and recompile with a learning rate about 10x lower "
                    f"(below {default:g} for this optimizer).",
                    {"learning_rate": peak, "trainable_weights": len(layer.trainable_weights)},
                ))


def lint(model):
    """Runs every static rule on `model`; returns its `LayerGraph` and the findings."""
    graph = LayerGraph(model)
    depth = count_weight_layers(model)
    findings = []
    _lint_initializers(graph, findings)
    _lint_selu(graph, findings)
    _lint_saturating(graph, findings, depth)
    _lint_bias_before_batch_normalization(graph, findings)
    _lint_optimizer(model, findings, depth)
    _lint_bases(model, graph, findings)
    return graph, findings
