"""Diagnostics that explain a failing run: a recipe lint and activation/gradient statistics.

`diagnose(model)` checks the model against the cautions of the "training deep
networks" chapter (initializer matched to the activation, what breaks
self-normalisation, saturating activations in deep networks, bias before
BatchNorm, gradient clipping, AdaGrad, pretrained bases, learning rate).

`diagnose(model, x, y)` also runs a few batches through the model and measures,
per layer, the activations' mean and standard deviation, the fraction of dead
ReLU units and of saturated sigmoid/tanh units, the gradient norms and their
first-to-last ratio, NaN and Inf, and a short training sanity check; what it
finds is mapped to the usual symptom table (loss not falling, dying ReLU,
exploding or vanishing gradients, unnormalised inputs, unstable BatchNorm with
tiny batches). The model is left exactly as it was.

Keras ships nothing like this; the measurements use Keras's public model API
(a probe model over the layers' outputs) and the backend's automatic
differentiation (`tf.GradientTape`, `jax.value_and_grad`, `torch.autograd.grad`),
so they work on the TensorFlow, JAX and PyTorch backends alike.
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import keras
import numpy as np
from keras import ops

from keras_recipes import _validation as v
from keras_recipes.lr_finder import (
    _batches,
    _build_for_training,
    _inner_optimizer,
    _loss_value,
    _preserved_global_random_state,
    _preserved_training_state,
    _to_numpy,
)

__all__ = [
    "DYNAMIC_RULES",
    "DiagnosisReport",
    "Finding",
    "LayerStatistics",
    "STATIC_RULES",
    "diagnose",
]

SEVERITIES = ("error", "warning", "info")

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

#: Dynamic rules (symptoms measured by `diagnose(model, x, y)`): name -> (severity, summary).
DYNAMIC_RULES = {
    "nan_or_inf": ("error", "NaN or Inf in the loss, activations or gradients"),
    "exploding_gradients": ("error", "gradients explode"),
    "vanishing_gradients": ("warning", "gradients vanish in the lower layers"),
    "dying_relu": ("warning", "dead ReLU units"),
    "unnormalized_inputs": ("warning", "inputs are not standardised"),
    "unstable_batch_normalization": ("warning", "BatchNormalization with tiny batches"),
    "loss_not_falling": ("warning", "the loss does not fall"),
}

# Thresholds of the dynamic checks (documented in `diagnose`).
DEEP_NETWORK_WEIGHT_LAYERS = 5
DEAD_FRACTION_THRESHOLD = 0.5
SATURATED_FRACTION_THRESHOLD = 0.5
EXPLODING_GRADIENT_RATIO = 100.0
EXPLODING_GRADIENT_NORM = 1e4
VANISHING_GRADIENT_RATIO = 1e-3
INPUT_RMS_THRESHOLD = 5.0
MIN_BATCH_NORMALIZATION_BATCH = 16
MIN_RELATIVE_LOSS_DROP = 0.01
SIGMOID_SATURATION = 0.01  # output within this of 0 or 1
TANH_SATURATION = 0.99  # |output| above this

RELU_FAMILY = frozenset(
    {
        "relu", "relu6", "leaky_relu", "prelu", "elu", "celu", "gelu", "silu", "mish",
        "softplus", "hard_silu", "sparse_plus", "squareplus",
    }
)
HARD_ZERO_ACTIVATIONS = frozenset({"relu", "relu6"})
SATURATING_ACTIVATIONS = frozenset({"sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softsign"})

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


# ---------------------------------------------------------------------------
# Report objects
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem found by `diagnose`.

    Attributes:
        rule: str, the rule's name (a key of `STATIC_RULES` or `DYNAMIC_RULES`).
        severity: str, `"error"`, `"warning"` or `"info"`.
        layer: str or None, the name of the layer concerned (None for the
            optimizer or the whole model).
        message: str, what was found.
        why: str, why it matters.
        fix: str, what to do about it.
        evidence: dict, the numbers behind a measured finding.
    """

    rule: str
    severity: str
    layer: str | None
    message: str
    why: str
    fix: str
    evidence: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        """Returns the finding as a plain dict."""
        return dataclasses.asdict(self)

    def __str__(self):
        where = f" (layer '{self.layer}')" if self.layer else ""
        return (
            f"[{self.severity}] {self.rule}{where}: {self.message}\n"
            f"    why: {self.why}\n    fix: {self.fix}"
        )


@dataclasses.dataclass
class LayerStatistics:
    """Activation and gradient statistics of one layer, measured by `diagnose`.

    Attributes:
        layer: str, the layer's name.
        activation: str or None, the activation at the layer's output.
        mean: float, the mean of the layer's output over the batches.
        std: float, the standard deviation of the layer's output.
        dead_fraction: float or None, for ReLU outputs, the fraction of units
            (last axis) that are zero for every sample of every batch.
        saturated_fraction: float or None, for sigmoid/tanh outputs, the
            fraction of outputs in the flat tails (sigmoid within 0.01 of 0 or
            1, |tanh| above 0.99).
        gradient_norm: float or None, for layers with weights, the L2 norm of
            the loss gradient with respect to the layer's trainable weights
            (averaged over the batches).
        gradient_rms: float or None, `gradient_norm / sqrt(number of weights)`,
            comparable between layers of different sizes.
        nonfinite: int, the number of NaN/Inf values in the outputs and gradients.
    """

    layer: str
    activation: str | None
    mean: float = math.nan
    std: float = math.nan
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    gradient_norm: float | None = None
    gradient_rms: float | None = None
    nonfinite: int = 0

    def to_dict(self):
        """Returns the statistics as a plain dict."""
        return dataclasses.asdict(self)


class DiagnosisReport:
    """What `diagnose` found: findings, per-layer statistics, and a readable summary.

    `print(report)` shows the findings (each with why it matters and the fix)
    and, after a dynamic diagnosis, a table of per-layer statistics.

    Attributes:
        model_name: str, the model's name.
        findings: list of `Finding`, errors first.
        layers: list of `LayerStatistics` (empty for a static diagnosis).
        gradient_norm_ratio: float or None, the RMS gradient of the first
            layer with weights divided by that of the last one.
        losses: list of float, the training losses of the sanity check.
        input_statistics: dict or None, the largest per-feature RMS, mean and
            std of the inputs as the first layer with weights sees them.
        batch_size: int or None, the batch size of the measured batches.
    """

    def __init__(
        self,
        model_name,
        findings,
        layers=(),
        gradient_norm_ratio=None,
        losses=(),
        input_statistics=None,
        batch_size=None,
        notes=(),
    ):
        order = {severity: i for i, severity in enumerate(SEVERITIES)}
        self.model_name = model_name
        self.findings = sorted(findings, key=lambda f: order[f.severity])
        self.layers = list(layers)
        self.gradient_norm_ratio = gradient_norm_ratio
        self.losses = [float(loss) for loss in losses]
        self.input_statistics = input_statistics
        self.batch_size = batch_size
        self.notes = list(notes)

    @property
    def errors(self):
        """The findings of severity "error"."""
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self):
        """The findings of severity "warning"."""
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def rules(self):
        """The set of rule names found."""
        return {f.rule for f in self.findings}

    @property
    def ok(self):
        """True when there is no error and no warning (infos are allowed)."""
        return not self.errors and not self.warnings

    def by_rule(self, rule):
        """The findings of one rule."""
        return [f for f in self.findings if f.rule == rule]

    def to_dict(self):
        """Returns the whole report as plain Python data (e.g. for JSON)."""
        return {
            "model_name": self.model_name,
            "findings": [f.to_dict() for f in self.findings],
            "layers": [s.to_dict() for s in self.layers],
            "gradient_norm_ratio": self.gradient_norm_ratio,
            "losses": self.losses,
            "input_statistics": self.input_statistics,
            "batch_size": self.batch_size,
            "notes": self.notes,
        }

    def __repr__(self):
        counts = ", ".join(
            f"{sum(f.severity == s for f in self.findings)} {s}" for s in SEVERITIES
        )
        return f"<DiagnosisReport model='{self.model_name}' findings: {counts}>"

    def _repr_pretty_(self, printer, cycle):  # IPython / Jupyter
        printer.text(str(self))

    def __str__(self):
        lines = []
        n_err, n_warn = len(self.errors), len(self.warnings)
        n_info = len(self.findings) - n_err - n_warn
        if self.findings:
            head = f"{n_err} error(s), {n_warn} warning(s), {n_info} info"
        else:
            head = "no problems found"
        lines.append(f"Diagnosis of model '{self.model_name}': {head}")
        for finding in self.findings:
            lines.append(str(finding))
        if self.layers:
            lines.append("")
            lines.append(
                f"Per-layer statistics (training mode, batches of {self.batch_size}):"
            )
            lines.append(_format_table(self.layers))
        if self.gradient_norm_ratio is not None:
            lines.append(
                f"Gradient RMS ratio first/last layer: {self.gradient_norm_ratio:.3g}"
            )
        if self.input_statistics:
            stats = self.input_statistics
            lines.append(
                f"Inputs of the first layer with weights: largest feature RMS "
                f"{stats['max_rms']:.3g} (|mean| up to {stats['max_abs_mean']:.3g}, "
                f"std up to {stats['max_std']:.3g})"
            )
        if self.losses:
            lines.append(
                f"Sanity training ({len(self.losses)} steps on the measured batches): "
                f"loss {self.losses[0]:.4g} -> {self.losses[-1]:.4g}"
            )
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)


def _fmt_number(value, spec=".3g"):
    if value is None:
        return "-"
    return format(value, spec)


def _format_table(stats):
    header = ("layer", "activation", "mean", "std", "dead", "saturated", "grad norm", "nan/inf")
    rows = [
        (
            s.layer,
            s.activation or "-",
            _fmt_number(s.mean),
            _fmt_number(s.std),
            _fmt_number(s.dead_fraction, ".0%"),
            _fmt_number(s.saturated_fraction, ".0%"),
            _fmt_number(s.gradient_norm),
            str(s.nonfinite),
        )
        for s in stats
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [header, *rows]
    )


# ---------------------------------------------------------------------------
# Model structure
# ---------------------------------------------------------------------------

_TRANSPARENT = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.Dropout,
    keras.layers.AlphaDropout,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.Flatten,
    keras.layers.Reshape,
)
_MERGE_LAYERS = (
    keras.layers.Add,
    keras.layers.Average,
    keras.layers.Concatenate,
    keras.layers.Dot,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Multiply,
    keras.layers.Subtract,
)


def _activation_name(fn):
    if fn is None:
        return "linear"
    name = None
    try:
        name = keras.activations.serialize(fn)
    except Exception:  # custom callables that Keras cannot serialize
        name = None
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
        if isinstance(name, dict):
            name = name.get("name")
    if not isinstance(name, str):
        name = getattr(fn, "__name__", type(fn).__name__)
    name = name.lower()
    return {"swish": "silu", "hard_swish": "hard_silu"}.get(name, name)


def _is_weight_layer(layer):
    return (
        isinstance(layer, keras.layers.Layer)
        and not isinstance(layer, keras.Model)
        and not isinstance(layer, keras.layers.RNN)
        and hasattr(layer, "kernel_initializer")
    )


def _own_activation(layer):
    """The activation a layer applies itself, or None if it is not an activation."""
    if isinstance(layer, keras.layers.LeakyReLU):
        return "leaky_relu"
    if isinstance(layer, keras.layers.PReLU):
        return "prelu"
    if isinstance(layer, keras.layers.ELU):
        return "elu"
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, keras.layers.ReLU):
        if getattr(layer, "negative_slope", 0.0):
            return "leaky_relu"
        return "relu6" if getattr(layer, "max_value", None) == 6 else "relu"
    if isinstance(layer, keras.layers.Activation) or _is_weight_layer(layer):
        activation = getattr(layer, "activation", None)
        return _activation_name(activation) if activation is not None else "linear"
    return None


def _initializer_family(initializer):
    if isinstance(initializer, keras.initializers.VarianceScaling):
        scale, mode = float(initializer.scale), initializer.mode
        if mode == "fan_avg" and math.isclose(scale, 1.0):
            return "glorot"
        if mode == "fan_in" and math.isclose(scale, 2.0):
            return "he"
        if mode == "fan_in" and math.isclose(scale, 1.0):
            return "lecun"
        return "variance_scaling"
    return type(initializer).__name__


def _initializer_name(initializer):
    name = type(initializer).__name__
    if isinstance(initializer, keras.initializers.VarianceScaling):
        name += f"(scale={initializer.scale:g}, mode={initializer.mode!r})"
    return name


class _Graph:
    """The layers of one model level in topological order, with their connections.

    Functional models (and Sequential ones, through their functional graph) give
    the exact graph; other models are read as a chain of `model.layers`.
    """

    def __init__(self, model):
        self.model = model
        self.layers = []  # operations (layers or ops) in topological order
        self.successors = {}
        self.predecessors = {}
        self.nodes = {}  # id(op) -> list of nodes of this graph calling it
        self.outputs = set()  # ids of ops producing model outputs
        self.exact = False
        functional = model if hasattr(model, "_nodes_by_depth") else None
        if functional is None and isinstance(model, keras.Sequential):
            functional = getattr(model, "_functional", None)
        if functional is not None and hasattr(functional, "_nodes_by_depth"):
            self._from_nodes(functional)
        else:
            chain = list(model.layers)
            self.layers = chain
            for op in chain:
                self.successors[id(op)] = []
                self.predecessors[id(op)] = []
            for a, b in zip(chain, chain[1:]):
                self.successors[id(a)].append(b)
                self.predecessors[id(b)].append(a)
            if chain:
                self.outputs.add(id(chain[-1]))

    def _from_nodes(self, functional):
        self.exact = True
        by_depth = functional._nodes_by_depth
        node_ids = set()
        ordered = []
        for depth in sorted(by_depth, reverse=True):
            for node in by_depth[depth]:
                node_ids.add(id(node))
                ordered.append(node)
        seen = set()
        for node in ordered:
            op = node.operation
            if isinstance(op, keras.layers.InputLayer):
                continue
            self.nodes.setdefault(id(op), []).append(node)
            if id(op) not in seen:
                seen.add(id(op))
                self.layers.append(op)
                self.successors.setdefault(id(op), [])
                self.predecessors.setdefault(id(op), [])
            for parent in node.parent_nodes:
                parent_op = parent.operation
                if id(parent) not in node_ids or isinstance(parent_op, keras.layers.InputLayer):
                    continue
                if op not in self.successors.setdefault(id(parent_op), []):
                    self.successors[id(parent_op)].append(op)
                if parent_op not in self.predecessors[id(op)]:
                    self.predecessors[id(op)].append(parent_op)
        for tensor in keras.tree.flatten(functional.outputs):
            history = getattr(tensor, "_keras_history", None)
            if history is not None and history.operation is not None:
                self.outputs.add(id(history.operation))

    def effective_activation(self, layer):
        """The activation applied to a layer's output, looking through BN/Dropout."""
        own = _own_activation(layer)
        if own not in (None, "linear"):
            return own
        found, frontier, visited = set(), list(self.successors.get(id(layer), [])), set()
        while frontier:
            op = frontier.pop()
            if id(op) in visited:
                continue
            visited.add(id(op))
            activation = _own_activation(op)
            if activation is not None and not _is_weight_layer(op):
                found.add(activation)
            elif isinstance(op, _TRANSPARENT):
                frontier.extend(self.successors.get(id(op), []))
            else:
                found.add("linear")
        if len(found) == 1:
            return found.pop()
        return own or "linear"

    def is_output(self, layer):
        """Whether the layer's output reaches a model output through no other weights."""
        frontier, visited = [layer], set()
        while frontier:
            op = frontier.pop()
            if id(op) in visited:
                continue
            visited.add(id(op))
            if id(op) in self.outputs:
                return True
            passes = op is layer or isinstance(op, _TRANSPARENT) or (
                _own_activation(op) is not None and not _is_weight_layer(op)
            )
            if passes:
                frontier.extend(self.successors.get(id(op), []))
        return False


def _all_layers(model):
    """Every layer below `model`, nested models included (depth first)."""
    out = []
    for layer in model.layers:
        out.append(layer)
        if isinstance(layer, keras.Model):
            out.extend(_all_layers(layer))
    return out


def _count_weight_layers(model):
    return sum(_is_weight_layer(layer) for layer in _all_layers(model))


def _has_regularizer(layer):
    return [
        name
        for name in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                     "depthwise_regularizer", "pointwise_regularizer", "embeddings_regularizer")
        if getattr(layer, name, None) is not None
    ]


def _is_skip(op, graph):
    if isinstance(op, _MERGE_LAYERS):
        return True
    if isinstance(op, keras.layers.Layer):
        return False
    # A keras.ops operation (e.g. `x + shortcut`) joining several tensors.
    return len(graph.predecessors.get(id(op), [])) >= 2


# ---------------------------------------------------------------------------
# Optimizer helpers
# ---------------------------------------------------------------------------


def _peak_learning_rate(optimizer):
    """The largest learning rate the optimizer will use, as far as can be told."""
    inner = _inner_optimizer(optimizer)
    lr = inner._learning_rate
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
    inner = _inner_optimizer(optimizer)
    for cls in type(inner).__mro__:
        try:
            parameter = inspect.signature(cls.__init__).parameters.get("learning_rate")
        except (TypeError, ValueError):  # pragma: no cover - builtins
            continue
        if parameter is not None and isinstance(parameter.default, float):
            return parameter.default
    return 1e-3


def _learning_rate_limit(optimizer):
    inner = _inner_optimizer(optimizer)
    names = [cls.__name__ for cls in type(inner).__mro__]
    for name, limit in _LEARNING_RATE_LIMITS:
        if name in names:
            return name, limit
    return None, None


# ---------------------------------------------------------------------------
# Static lint
# ---------------------------------------------------------------------------


def _finding(rule, layer, message, why, fix, evidence=None):
    severity = (STATIC_RULES.get(rule) or DYNAMIC_RULES[rule])[0]
    name = getattr(layer, "name", layer)
    return Finding(rule, severity, name, message, why, fix, dict(evidence or {}))


def _lint_initializers(graph, findings):
    for layer in graph.layers:
        if not _is_weight_layer(layer):
            continue
        activation = graph.effective_activation(layer)
        family = _initializer_family(layer.kernel_initializer)
        init = _initializer_name(layer.kernel_initializer)
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


def _lint_selu(graph, findings):
    selu_layers = [
        layer for layer in graph.layers
        if isinstance(layer, keras.layers.Layer) and graph.effective_activation(layer) == "selu"
        and (_is_weight_layer(layer) or _own_activation(layer) == "selu")
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
        regularizers = _has_regularizer(layer) if isinstance(layer, keras.layers.Layer) else []
        if regularizers:
            findings.append(_finding(
                "selu_with_regularization", layer,
                f"{', '.join(regularizers)} in a SELU network",
                "L1/L2 penalties pull the weights away from the variance LeCun initialization "
                "set up, and the activations stop self-normalising. " + why_tail,
                "Regularise a SELU network with AlphaDropout (or max-norm) instead of L1/L2.",
                {"regularizers": regularizers},
            ))
        if _is_skip(layer, graph):
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
        if not _is_weight_layer(layer) or graph.is_output(layer):
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
        if not _is_weight_layer(layer) or not getattr(layer, "use_bias", False):
            continue
        if _own_activation(layer) != "linear":
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
    inner = _inner_optimizer(optimizer)
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
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in _all_layers(model))


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


def _lint(model):
    graph = _Graph(model)
    depth = _count_weight_layers(model)
    findings = []
    _lint_initializers(graph, findings)
    _lint_selu(graph, findings)
    _lint_saturating(graph, findings, depth)
    _lint_bias_before_batch_normalization(graph, findings)
    _lint_optimizer(model, findings, depth)
    _lint_bases(model, graph, findings)
    return graph, findings


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------


class _Accumulator:
    """Streaming statistics of one layer's output over several batches."""

    def __init__(self, activation):
        self.activation = activation
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.nonfinite = 0
        self.alive = None  # per unit: non-zero somewhere
        self.saturated = 0

    def update(self, values):
        values = np.asarray(values, dtype="float64")
        finite = np.isfinite(values)
        self.nonfinite += int(values.size - finite.sum())
        clean = np.where(finite, values, 0.0)
        self.count += int(finite.sum())
        self.total += float(clean.sum())
        self.total_sq += float((clean**2).sum())
        if self.activation in HARD_ZERO_ACTIVATIONS and values.ndim >= 2:
            alive = np.any(values.reshape(-1, values.shape[-1]) != 0, axis=0)
            self.alive = alive if self.alive is None else self.alive | alive
        if self.activation in ("sigmoid", "hard_sigmoid"):
            self.saturated += int(
                np.sum((clean < SIGMOID_SATURATION) | (clean > 1 - SIGMOID_SATURATION))
            )
        elif self.activation in SATURATING_ACTIVATIONS:
            self.saturated += int(np.sum(np.abs(clean) > TANH_SATURATION))

    def result(self, name):
        mean = self.total / self.count if self.count else math.nan
        variance = self.total_sq / self.count - mean**2 if self.count else math.nan
        std = math.sqrt(max(variance, 0.0)) if self.count else math.nan
        dead = None
        if self.alive is not None:
            dead = float(1.0 - self.alive.mean())
        saturated = None
        if self.activation in SATURATING_ACTIVATIONS:
            saturated = self.saturated / self.count if self.count else math.nan
        return LayerStatistics(
            layer=name,
            activation=self.activation,
            mean=mean,
            std=std,
            dead_fraction=dead,
            saturated_fraction=saturated,
            nonfinite=self.nonfinite,
        )


def _first_weight_layer(graph):
    for layer in graph.layers:
        if _is_weight_layer(layer) or isinstance(layer, keras.Model):
            return layer
    return None


def _probe_targets(graph):
    """Layers whose outputs are measured: layers with weights, activations, nested models."""
    targets = []
    for layer in graph.layers:
        if not isinstance(layer, keras.layers.Layer):
            continue
        if _is_weight_layer(layer) or isinstance(layer, keras.Model):
            targets.append(layer)
        elif _own_activation(layer) is not None:
            targets.append(layer)
    return targets


def _node_output(graph, layer):
    node = graph.nodes[id(layer)][0]
    outputs = node.outputs
    return outputs[0] if len(outputs) == 1 else outputs[0]


def _node_input(graph, layer):
    node = graph.nodes[id(layer)][0]
    tensors = node.arguments.keras_tensors
    return tensors[0] if tensors else None


def _functional_inputs(model):
    functional = model if hasattr(model, "_nodes_by_depth") else getattr(model, "_functional", None)
    return functional.input  # the inputs in the structure the model was built with


def _measure_activations(model, graph, batches, cache):
    """Per-layer statistics of the outputs in training mode, plus the inputs' statistics."""
    targets = _probe_targets(graph)
    first = _first_weight_layer(graph)
    accumulators = {
        id(layer): _Accumulator(None if isinstance(layer, keras.Model) else _own_activation(layer))
        for layer in targets
    }
    input_values = []
    if graph.exact:
        outputs = [_node_output(graph, layer) for layer in targets]
        first_input = _node_input(graph, first) if first is not None else None
        if first_input is not None:
            outputs.append(first_input)
        probe = cache.get("probe")
        if probe is None:
            probe = cache["probe"] = keras.Model(_functional_inputs(model), outputs)
        for bx, _, _ in batches:
            values = probe(bx, training=True)
            values = list(values) if isinstance(values, (list, tuple)) else [values]
            if first_input is not None:
                input_values.append(ops.convert_to_numpy(values.pop()))
            for layer, value in zip(targets, values):
                accumulators[id(layer)].update(ops.convert_to_numpy(value))
    else:
        # A chain of layers (e.g. a subclassed model): run them one by one.
        for bx, _, _ in batches:
            value = bx
            for layer in graph.layers:
                if layer is first:
                    input_values.append(ops.convert_to_numpy(value))
                value = layer(value, training=True)
                if id(layer) in accumulators:
                    accumulators[id(layer)].update(ops.convert_to_numpy(value))
    stats = [accumulators[id(layer)].result(layer.name) for layer in targets]
    input_statistics = None
    if input_values and all(np.issubdtype(a.dtype, np.number) for a in input_values):
        data = np.concatenate([a.reshape(-1, a.shape[-1]) for a in input_values]).astype(
            "float64"
        )
        data = data[np.all(np.isfinite(data), axis=1)]
        if data.size:
            mean, std = data.mean(axis=0), data.std(axis=0)
            rms = np.sqrt(mean**2 + std**2)
            input_statistics = {
                "layer": first.name,
                "max_rms": float(rms.max()),
                "max_abs_mean": float(np.abs(mean).max()),
                "max_std": float(std.max()),
                "num_features": int(data.shape[1]),
            }
    return stats, input_statistics


# Keras crossentropies that TensorFlow's backend computes from the logits of a
# softmax/sigmoid output: loss function -> (output activation, from-logits class).
_LOGIT_CROSSENTROPIES = (
    (
        keras.losses.sparse_categorical_crossentropy,
        keras.losses.SparseCategoricalCrossentropy,
        "softmax",
    ),
    (keras.losses.categorical_crossentropy, keras.losses.CategoricalCrossentropy, "softmax"),
    (keras.losses.binary_crossentropy, keras.losses.BinaryCrossentropy, "sigmoid"),
)


class _LogitsLoss:
    """The model's crossentropy computed from the logits of its softmax/sigmoid output layer.

    Keras's TensorFlow backend computes `crossentropy(y, softmax(z))` from the
    logits `z` (the softmax output carries them); its JAX and PyTorch
    backends compute it from the probabilities clipped to
    `[epsilon, 1 - epsilon]`. The two agree, in value and gradient, until the
    output saturates; then the clipped version has a gradient of exactly zero,
    which would hide exploding activations behind "no gradient at all". The
    gradient statistics therefore use the logits on every backend.
    """

    def __init__(self, layer, loss):
        self.layer = layer
        self.loss = loss
        self.logits = None

    def __enter__(self):
        original = self.original = self.layer.activation

        def recording_activation(x):
            self.logits = x
            self.output = original(x)
            return self.output

        self.logits = self.output = None
        self.layer.activation = recording_activation
        return self

    def __exit__(self, *exc):
        self.layer.activation = self.original
        return False


def _logits_loss(model, graph):
    """A `_LogitsLoss` when the model's loss is a Keras crossentropy on a softmax/sigmoid
    output layer (one output, no loss weights, `compute_loss` not overridden), else None."""
    if type(model).compute_loss is not keras.Model.compute_loss:
        return None
    compile_loss = getattr(model, "_compile_loss", None)
    if getattr(compile_loss, "_user_loss_weights", None) is not None:
        return None
    loss = getattr(model, "loss", None)
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    elif isinstance(loss, dict) and len(loss) == 1:
        loss = next(iter(loss.values()))
    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)
        except (ValueError, TypeError):
            return None
    config, activation, logits_class = None, None, None
    for fn, cls, act in _LOGIT_CROSSENTROPIES:
        if loss is fn:
            config, activation, logits_class = {}, act, cls
        elif type(loss) is cls:
            config = loss.get_config()
            if config.get("from_logits"):
                return None
            activation, logits_class = act, cls
    if logits_class is None:
        return None
    outputs = [layer for layer in graph.layers if id(layer) in graph.outputs]
    if len(outputs) != 1 or len(keras.tree.flatten(getattr(model, "outputs", None) or [0])) != 1:
        return None
    layer = outputs[0]
    if not isinstance(layer, keras.layers.Layer) or isinstance(layer, keras.Model):
        return None
    if not callable(getattr(layer, "activation", None)):
        return None
    if _activation_name(layer.activation) != activation:
        return None
    return _LogitsLoss(layer, logits_class.from_config({**config, "from_logits": True}))


def _call_compute_loss(model, x, y, y_pred, sample_weight):
    compute = getattr(model, "_compute_loss", None)  # Keras's wrapper for old signatures
    if compute is None:  # pragma: no cover - older Keras
        return model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
    return compute(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)


def _forward_loss(model, x, y, sample_weight, logits_loss):
    """The training-mode loss of one batch, inside the caller's autodiff context."""
    if logits_loss is None:
        y_pred = model(x, training=True)
        return _call_compute_loss(model, x, y, y_pred, sample_weight)
    with logits_loss:
        y_pred = model(x, training=True)
    if (
        logits_loss.logits is None
        or logits_loss.output is not y_pred
        or getattr(y_pred, "_keras_mask", None) is not None
    ):
        # The recorded softmax is not what the model returns (or the output is
        # masked): use the model's own loss.
        return _call_compute_loss(model, x, y, y_pred, sample_weight)
    loss = logits_loss.loss(y, logits_loss.logits, sample_weight=sample_weight)
    for extra in model.losses:  # regularization and `add_loss` terms, as compute_loss adds
        loss = loss + ops.cast(ops.sum(extra), loss.dtype)
    return loss


def _gradients(model, x, y, sample_weight, logits_loss=None):
    """Loss and gradients w.r.t. `model.trainable_variables` for one batch (any backend).

    The loss is the unscaled training loss (no loss scaling), computed in
    training mode; nothing is assigned to the model's variables on JAX, and
    on PyTorch the variables' `.grad` fields are left untouched.
    """
    backend = keras.backend.backend()
    variables = model.trainable_variables
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = _forward_loss(model, x, y, sample_weight, logits_loss)
        grads = tape.gradient(loss, [variable.value for variable in variables])
    elif backend == "jax":
        import jax

        def loss_fn(values):
            # Reads the trainable variables from `values`; every assignment
            # (BatchNorm statistics, seed states) stays inside the scope.
            mapping = list(zip(variables, values))
            with keras.StatelessScope(state_mapping=mapping, collect_losses=True):
                return _forward_loss(model, x, y, sample_weight, logits_loss)

        loss, grads = jax.value_and_grad(loss_fn)([variable.value for variable in variables])
    elif backend == "torch":
        import torch

        with torch.enable_grad():
            loss = _forward_loss(model, x, y, sample_weight, logits_loss)
            parameters = [variable.value for variable in variables]
            if parameters and loss.requires_grad:
                grads = torch.autograd.grad(loss, parameters, allow_unused=True)
            else:
                grads = [None] * len(parameters)
        loss = loss.detach()
    else:
        raise NotImplementedError(
            f"diagnose() measures gradients on the TensorFlow, JAX and PyTorch backends; "
            f"the current backend is {backend!r}."
        )
    grads = [
        None if g is None else np.asarray(ops.convert_to_numpy(g), dtype="float64") for g in grads
    ]
    return float(np.asarray(ops.convert_to_numpy(loss))), grads


def _measure_gradients(model, graph, batches):
    """Per-layer gradient norm and RMS averaged over the batches; the first loss."""
    layers = [
        layer for layer in graph.layers
        if (_is_weight_layer(layer) or isinstance(layer, keras.Model)) and layer.trainable_weights
    ]
    index = {id(variable): i for i, variable in enumerate(model.trainable_variables)}
    norms = {id(layer): [] for layer in layers}
    sizes = {id(layer): sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
             for layer in layers}
    nonfinite = {id(layer): 0 for layer in layers}
    losses = []
    logits_loss = _logits_loss(model, graph)
    for bx, by, bsw in batches:
        loss, grads = _gradients(model, bx, by, bsw, logits_loss)
        losses.append(loss)
        for layer in layers:
            total = 0.0
            for weight in layer.trainable_weights:
                g = grads[index[id(weight)]] if id(weight) in index else None
                if g is None:
                    continue
                nonfinite[id(layer)] += int(np.size(g) - np.isfinite(g).sum())
                total += float(np.sum(np.square(g)))
            norms[id(layer)].append(math.sqrt(total) if math.isfinite(total) else math.inf)
    result = {}
    for layer in layers:
        norm = float(np.mean(norms[id(layer)])) if norms[id(layer)] else math.nan
        result[id(layer)] = (
            norm,
            norm / math.sqrt(max(sizes[id(layer)], 1)),
            nonfinite[id(layer)],
        )
    return layers, result, losses


def _sanity_training(model, batches, num_steps):
    losses = []
    with _preserved_training_state(model):
        for step in range(num_steps):
            bx, by, bsw = batches[step % len(batches)]
            logs = model.train_on_batch(bx, by, sample_weight=bsw, return_dict=True)
            losses.append(_loss_value(logs))
            if not math.isfinite(losses[-1]):
                break
    return losses


def _symptoms(model, graph, report_data):
    """Maps the measurements to the symptom table."""
    stats, ratio, losses, input_stats, batch_size, first_losses = report_data
    findings = []
    nonfinite_layers = [s for s in stats if s.nonfinite]
    nonfinite_loss = any(not math.isfinite(loss) for loss in first_losses + losses)
    if nonfinite_layers or nonfinite_loss:
        first = nonfinite_layers[0].layer if nonfinite_layers else None
        findings.append(_finding(
            "nan_or_inf", first,
            "NaN/Inf values: " + (
                f"first in the outputs or gradients of layer '{first}'" if first
                else "in the loss"
            ),
            "Once a NaN or Inf appears, every weight it touches becomes NaN and training "
            "cannot recover.",
            "Check the inputs for NaN/Inf, lower the learning rate, clip gradients "
            "(clipnorm=1.0), use He/LeCun initialization and BatchNormalization; for custom "
            "losses guard log() and division.",
            {"layers": [s.layer for s in nonfinite_layers], "loss_nonfinite": nonfinite_loss},
        ))
    for s in stats:
        if s.dead_fraction is not None and s.dead_fraction >= DEAD_FRACTION_THRESHOLD:
            findings.append(_finding(
                "dying_relu", s.layer,
                f"{s.dead_fraction:.0%} of the units output 0 for every sample",
                "A ReLU unit whose input is negative for every sample outputs 0 and gets no "
                "gradient, so it never recovers; the layer loses that capacity.",
                "Use He initialization, a leaky variant (LeakyReLU, ELU, SELU), "
                "BatchNormalization before the activation, or a lower learning rate.",
                {"dead_fraction": s.dead_fraction},
            ))
    gradient_stats = [s for s in stats if s.gradient_norm is not None]
    exploding = [
        s for s in gradient_stats
        if not math.isfinite(s.gradient_norm) or s.gradient_norm > EXPLODING_GRADIENT_NORM
    ]
    growing = ratio is not None and ratio > EXPLODING_GRADIENT_RATIO
    if exploding or growing:
        where = exploding[0].layer if exploding else (
            gradient_stats[0].layer if gradient_stats else None
        )
        parts = []
        if exploding:
            largest = max(exploding, key=lambda s: s.gradient_norm)
            parts.append(f"gradient norm {largest.gradient_norm:.3g} at layer '{largest.layer}'")
        if growing:
            parts.append(f"gradients grow towards the lower layers (RMS ratio first/last "
                         f"{ratio:.3g})")
        findings.append(_finding(
            "exploding_gradients", where,
            "; ".join(parts),
            "Exploding gradients make the layers take huge steps; the loss oscillates, jumps "
            "or turns NaN. They usually come with activations whose scale grows from layer to "
            "layer (see the std column).",
            "Use He (ReLU family) or LeCun (SELU) initialization instead of large random "
            "weights, add BatchNormalization, clip gradients (clipnorm=1.0), lower the "
            "learning rate.",
            {"gradient_norm_ratio": ratio,
             "gradient_norms": {s.layer: s.gradient_norm for s in gradient_stats},
             "activation_stds": {s.layer: s.std for s in stats}},
        ))
    saturated = [
        s for s in stats
        if s.saturated_fraction is not None and s.saturated_fraction >= SATURATED_FRACTION_THRESHOLD
    ]
    if (ratio is not None and ratio < VANISHING_GRADIENT_RATIO) or saturated:
        where = saturated[0].layer if saturated else (
            gradient_stats[0].layer if gradient_stats else None
        )
        parts = []
        if ratio is not None and ratio < VANISHING_GRADIENT_RATIO:
            parts.append(f"RMS gradient ratio first/last layer {ratio:.3g}")
        for s in saturated:
            parts.append(f"{s.saturated_fraction:.0%} of '{s.layer}' ({s.activation}) saturated")
        findings.append(_finding(
            "vanishing_gradients", where,
            "; ".join(parts),
            "When gradients shrink on their way down (saturated sigmoid/tanh units have a "
            "derivative near 0), the lower layers barely change and training stalls.",
            "Use ELU/ReLU with He initialization (or SELU with LeCun normal) in hidden layers, "
            "BatchNormalization, and keep inputs standardised; Glorot initialization if you "
            "keep sigmoid/tanh.",
            {"gradient_norm_ratio": ratio,
             "saturated": {s.layer: s.saturated_fraction for s in saturated}},
        ))
    if input_stats is not None and input_stats["max_rms"] > INPUT_RMS_THRESHOLD:
        findings.append(_finding(
            "unnormalized_inputs", input_stats["layer"],
            f"inputs reach a per-feature RMS of {input_stats['max_rms']:.3g} "
            f"(|mean| up to {input_stats['max_abs_mean']:.3g}, std up to "
            f"{input_stats['max_std']:.3g})",
            "Large or uneven input scales saturate or kill units of the first layer and make "
            "the loss surface badly conditioned; initializations assume inputs with mean 0 "
            "and std 1.",
            "Standardise the inputs (keras.layers.Normalization adapted to the training data "
            "in front of the model, or Rescaling(1/255) for pixels).",
            input_stats,
        ))
    if (
        batch_size is not None
        and batch_size < MIN_BATCH_NORMALIZATION_BATCH
        and any(isinstance(layer, keras.layers.BatchNormalization) for layer in _all_layers(model))
    ):
        findings.append(_finding(
            "unstable_batch_normalization", None,
            f"BatchNormalization with batches of {batch_size}",
            "BatchNormalization normalises with the mean and variance of each batch; with "
            "tiny batches these are noisy estimates, so training is unstable and the moving "
            "statistics used at inference do not match.",
            f"Train with batches of {MIN_BATCH_NORMALIZATION_BATCH} or more, or replace "
            "BatchNormalization by LayerNormalization/GroupNormalization.",
            {"batch_size": batch_size},
        ))
    num_batches = len(first_losses)
    if (
        num_batches
        and len(losses) > num_batches
        and all(math.isfinite(loss) for loss in losses + first_losses)
    ):
        # Compare each batch's loss before training with its loss at its last visit.
        last = {}
        for step, loss in enumerate(losses):
            last[step % num_batches] = loss
        start = float(np.mean([first_losses[b] for b in sorted(last)]))
        end = float(np.mean([last[b] for b in sorted(last)]))
        drop = (start - end) / max(abs(start), 1e-12)
        if drop < MIN_RELATIVE_LOSS_DROP:
            findings.append(_finding(
                "loss_not_falling", None,
                f"after {len(losses)} training steps on the same {num_batches} batch(es) the "
                f"mean loss went from {start:.4g} to {end:.4g}",
                "A healthy model overfits a handful of batches quickly. A loss that stays "
                "flat or rises points to a learning rate far too small or too large, dead or "
                "saturated units, or labels that do not match the loss.",
                "Pick the learning rate with keras_recipes.find_learning_rate; check the "
                "other findings (dead units, vanishing gradients, unnormalised inputs) and "
                "that the loss matches the labels (sparse vs one-hot).",
                {"losses": losses, "initial_losses": first_losses, "relative_drop": drop},
            ))
    return findings


def _collect_batches(x, y, sample_weight, batch_size, num_batches, seed):
    iterator = _batches(x, y, sample_weight, batch_size, True, seed)
    batches = []
    for _ in range(num_batches):
        batches.append(next(iterator))
    # Datasets are cycled: keep distinct batches only once.
    return batches


def _batch_size_of(batch):
    leaves = keras.tree.flatten(batch[0])
    return int(np.shape(leaves[0])[0]) if leaves else None


def measure(model, batches, graph=None, cache=None):
    """Layer statistics and gradient ratio of `model` on `batches`; the model is unchanged.

    Used by `diagnose` and by `keras_recipes.callbacks.TrainingMonitor`.
    `batches` is a list of `(x, y, sample_weight)` tuples; `cache` an optional
    dict that keeps the probe model between calls. Returns
    `(layer_statistics, gradient_norm_ratio, input_statistics, losses, notes)`.
    """
    graph = graph or _Graph(model)
    cache = {} if cache is None else cache
    notes = []
    with _preserved_model_state(model):
        if graph.exact or not _is_subclassed(model):
            stats, input_stats = _measure_activations(model, graph, batches, cache)
        else:
            stats, input_stats = [], None
            notes.append(
                "activation statistics need a Functional or Sequential model; only gradients "
                "were measured"
            )
    with _preserved_model_state(model):
        layers, gradients, losses = _measure_gradients(model, graph, batches)
    by_name = {s.layer: s for s in stats}
    for layer in layers:
        norm, rms, nonfinite = gradients[id(layer)]
        s = by_name.get(layer.name)
        if s is None:
            s = LayerStatistics(layer=layer.name, activation=_own_activation(layer))
            stats.append(s)
            by_name[layer.name] = s
        s.gradient_norm, s.gradient_rms = norm, rms
        s.nonfinite += nonfinite
    ratio = None
    if len(layers) >= 2:
        first, last = gradients[id(layers[0])][1], gradients[id(layers[-1])][1]
        if math.isfinite(first) and math.isfinite(last) and last > 0:
            ratio = first / last
        elif not math.isfinite(first):
            ratio = math.inf
    return stats, ratio, input_stats, losses, notes


def _is_subclassed(model):
    return not hasattr(model, "_nodes_by_depth") and not isinstance(model, keras.Sequential)


class _preserved_model_state:
    """Restores model variables, metric variables and (on PyTorch) the global RNG.

    Forward passes in training mode update BatchNorm statistics and seed
    states, and on PyTorch unseeded dropout draws from torch's global generator.
    """

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.random_state = _preserved_global_random_state()
        self.random_state.__enter__()
        self.variables = list(self.model.variables)
        self.saved = [_to_numpy(variable) for variable in self.variables]
        self.metric_variables = list(self.model.metrics_variables)
        self.saved_metrics = [_to_numpy(variable) for variable in self.metric_variables]
        return self

    def __exit__(self, *exc):
        for variable, value in zip(self.variables, self.saved):
            variable.assign(value)
        for variable, value in zip(self.metric_variables, self.saved_metrics):
            variable.assign(value)
        self.random_state.__exit__(*exc)
        return False


# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------


def diagnose(
    model,
    x=None,
    y=None,
    *,
    sample_weight=None,
    batch_size=32,
    num_batches=4,
    num_steps=20,
    seed=None,
    verbose=0,
):
    """Explains what is likely to go wrong when training `model`.

    Without data, a static lint of the chapter's cautions; each finding has a
    severity, the layer it concerns, why it matters and the fix:

    - `initializer_mismatch`: ReLU-family activation (ReLU, leaky ReLU, PReLU,
      ELU, GELU, Swish, Mish, ...) with Glorot initialization, or SELU
      without LeCun initialization. The activation is looked up through
      BatchNormalization/Dropout, so `Dense -> BatchNormalization -> ELU`
      counts as ELU.
    - `selu_with_dropout`, `selu_with_regularization`,
      `selu_with_batch_normalization`, `selu_with_skip_connection`: what
      breaks self-normalisation in a SELU network.
    - `saturating_activation_in_deep_network`: sigmoid/tanh in a hidden layer
      of a network with 5 or more layers with weights.
    - `bias_before_batch_normalization` (info): a bias the BatchNorm cancels.
    - `clipvalue_instead_of_clipnorm`: gradient clipping by value.
    - `adagrad_on_deep_network`: AdaGrad with 5 or more layers with weights.
    - `trainable_pretrained_base`: a nested model (a reused base) with
      trainable weights while the learning rate is at least the optimizer's
      default, i.e. not a fine-tuning learning rate.
    - `pretrained_base_training_mode`: a nested model containing
      BatchNormalization called without `training=False`.
    - `learning_rate_too_large`: a peak learning rate above 0.03 for the Adam
      family and RMSprop, 3e-3 for Lion, 1.0 for SGD and Adagrad.

    With data, it also runs `num_batches` batches through the model in
    training mode and measures per layer the outputs' mean and std, the
    fraction of dead ReLU units (zero for every sample), the fraction of
    saturated sigmoid/tanh outputs, the gradient norm of each layer with
    weights (and their RMS ratio from the first to the last layer), and
    NaN/Inf; then trains `num_steps` steps on those batches (a model that
    cannot overfit a few batches has a problem). These map to symptoms:

    - `nan_or_inf` (error): NaN or Inf in the loss, outputs or gradients.
    - `exploding_gradients` (error): a gradient norm above 1e4 or not finite,
      or a first/last RMS gradient ratio above 100.
    - `vanishing_gradients`: a first/last RMS gradient ratio below 1e-3, or
      half of a sigmoid/tanh layer's outputs saturated.
    - `dying_relu`: half or more of a ReLU layer's units dead.
    - `unnormalized_inputs`: a feature entering the first layer with weights
      has an RMS (sqrt(mean^2 + std^2)) above 5.
    - `unstable_batch_normalization`: BatchNormalization with batches smaller
      than 16 (pass the batch size you train with).
    - `loss_not_falling`: the mean loss of the last training steps is less
      than 1% below that of the first ones.

    The layer rules look at the model's own layers (through its functional
    graph, or in the order of `model.layers` for a subclassed model); a nested
    model is treated as one block, a (pretrained) base, and checked by the
    base rules only.

    The gradients are those of the unscaled training loss. When that loss is
    a Keras crossentropy (`sparse_categorical_crossentropy`,
    `categorical_crossentropy`, `binary_crossentropy`) on a softmax/sigmoid
    output layer, it is computed from that layer's logits on every backend,
    as Keras's TensorFlow backend computes it anyway. (Keras's JAX and
    PyTorch backends compute it from the probabilities clipped to
    `[1e-7, 1 - 1e-7]`, whose gradient is exactly zero once the output
    saturates: exploding activations would then read as "no gradient".)

    The model is left exactly as it was: weights, BatchNorm statistics, seed
    states, metrics and optimizer state are restored (see
    `find_learning_rate`; an unbuilt optimizer is built as the first `fit`
    would build it), and so is torch's global random generator, from which
    unseeded dropout layers draw on the PyTorch backend. Activation
    statistics need a Functional or Sequential model (or a subclassed one
    whose `layers` form a chain); gradients work for any model.

    Backends: TensorFlow, JAX and PyTorch. One PyTorch caveat: Keras's first
    `fit` of a model whose loss and metrics are not built yet draws once from
    torch's global generator; once `diagnose(model, x, y)` has built them, that
    draw no longer happens, so the masks of *unseeded* dropout layers (not the
    weights or the optimizer state) in the following `fit` differ from a run
    without `diagnose`. Give dropout layers a `seed` for bit-identical runs.

    Args:
        model: a `keras.Model` (compiled, when data is given).
        x: optional input data: numpy array(s), a `tf.data.Dataset` or a
            `keras.utils.PyDataset`. Defaults to `None` (static lint only).
        y: optional targets for array inputs. Defaults to `None`.
        sample_weight: optional per-sample weights for array inputs.
            Defaults to `None`.
        batch_size: int, batch size for array inputs; use the one you train
            with. Defaults to `32`.
        num_batches: int, the number of batches measured. Defaults to `4`.
        num_steps: int, the number of training steps of the sanity check
            (0 to skip it). Defaults to `20`.
        seed: int or `None`, seed of the sample drawn from array inputs.
            Defaults to `None`.
        verbose: int, 1 to print the report. Defaults to `0`.

    Returns:
        A `DiagnosisReport`: `print(report)` for the readable report,
        `report.findings`, `report.layers`, `report.to_dict()` for data.

    Raises:
        TypeError: if `model` is not a `keras.Model` or `x` is not data.
        ValueError: if data is given for a model that is not compiled, or an
            argument is out of range.

    Example:

    >>> import keras, keras_recipes
    >>> model = keras.Sequential([
    ...     keras.Input((8,)),
    ...     keras.layers.Dense(32, activation="relu"),  # Glorot by default
    ...     keras.layers.Dense(1),
    ... ])
    >>> report = keras_recipes.diagnose(model)
    >>> sorted(report.rules)
    ['initializer_mismatch']
    """
    if not isinstance(model, keras.Model):
        v.fail("model", model, "a keras.Model", error=TypeError)
    batch_size = v.check_int("batch_size", batch_size, min_value=1)
    num_batches = v.check_int("num_batches", num_batches, min_value=1)
    num_steps = v.check_int("num_steps", num_steps, min_value=0)
    verbose = v.check_int("verbose", verbose, min_value=0, max_value=2)
    if (seed is not None and not isinstance(seed, int)) or isinstance(seed, bool):
        v.fail("seed", seed, "an integer or None", error=TypeError)
    if x is None and (y is not None or sample_weight is not None):
        v.fail("x", None, "given when `y` or `sample_weight` is given")
    if x is not None and (
        getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False)
    ):
        v.fail(
            "model",
            model,
            "a compiled keras.Model when data is given",
            hint="Call `model.compile(optimizer=..., loss=...)` first, or call "
            "`diagnose(model)` without data for the static checks only",
        )
    if x is None:
        _, findings = _lint(model)
        report = DiagnosisReport(model.name, findings)
    else:
        batches = _collect_batches(x, y, sample_weight, batch_size, num_batches, seed)
        _build_for_training(model, batches[0])
        graph, findings = _lint(model)
        stats, ratio, input_stats, first_losses, notes = measure(model, batches, graph)
        losses = _sanity_training(model, batches, num_steps) if num_steps else []
        size = _batch_size_of(batches[0])
        findings += _symptoms(
            model, graph, (stats, ratio, losses, input_stats, size, first_losses)
        )
        report = DiagnosisReport(
            model.name, findings, stats, ratio, losses, input_stats, size, notes
        )
    if verbose:
        print(report)
    return report
