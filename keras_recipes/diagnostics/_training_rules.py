"""The training rules of the static lint: optimizer, learning rate, bases, callbacks."""

from __future__ import annotations

import inspect

import keras
from keras import ops

from keras_recipes import _keras_internals as internals
from keras_recipes.diagnostics._graph import all_layers
from keras_recipes.diagnostics._layer_rules import DEEP_NETWORK_WEIGHT_LAYERS
from keras_recipes.diagnostics.report import Finding

__all__ = ["RULES", "lint_training"]

#: The training rules: name -> (severity, one-line summary).
RULES = {
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
    "schedule_with_learning_rate_callback": (
        "error",
        "a learning-rate schedule with a callback that sets the learning rate "
        "(ReduceLROnPlateau, LearningRateScheduler)",
    ),
}

# Callbacks that write `optimizer.learning_rate`, which an optimizer created with a
# `LearningRateSchedule` refuses (TypeError).
_LEARNING_RATE_CALLBACKS = (
    keras.callbacks.ReduceLROnPlateau,
    keras.callbacks.LearningRateScheduler,
)


def _finding(rule, layer, message, why, fix, evidence=None):
    name = getattr(layer, "name", layer)
    return Finding(rule, RULES[rule][0], name, message, why, fix, dict(evidence or {}))


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


def _lint_callbacks(model, callbacks, findings):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not isinstance(optimizer, keras.optimizers.Optimizer):
        return
    schedules = [
        internals.learning_rate_object(component)
        for component in internals.component_optimizers(optimizer)
    ]
    schedules = [
        s for s in schedules if isinstance(s, keras.optimizers.schedules.LearningRateSchedule)
    ]
    if not schedules:
        return
    schedule = type(schedules[0]).__name__
    for callback in callbacks:
        if not isinstance(callback, _LEARNING_RATE_CALLBACKS):
            continue
        name = type(callback).__name__
        when = (
            f"once `{callback.monitor}` has not improved for {callback.patience} epoch(s)"
            if isinstance(callback, keras.callbacks.ReduceLROnPlateau)
            else "at the start of the first epoch"
        )
        findings.append(_finding(
            "schedule_with_learning_rate_callback", None,
            f"{name} sets the learning rate of an optimizer created with the schedule "
            f"{schedule}",
            "An optimizer created with a LearningRateSchedule computes its learning rate "
            "from the step and refuses to have it set: fit raises a TypeError "
            f"{when}. The two would also fight over the learning rate.",
            f"Use one of the two: drop {name} (the schedule already decides the learning "
            f"rate), or compile with a float learning rate and keep {name}.",
            {"callback": name, "schedule": schedule},
        ))


def lint_training(model, graph, depth, callbacks=()):
    """The findings of every training rule; `depth` is the number of layers with weights,
    `callbacks` those the model will be trained with."""
    findings = []
    _lint_optimizer(model, findings, depth)
    _lint_bases(model, graph, findings)
    _lint_callbacks(model, callbacks, findings)
    return findings
