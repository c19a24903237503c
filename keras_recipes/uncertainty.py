"""Monte-Carlo Dropout predictions and calibration helpers.

`MCDropoutPredictor` turns any trained Functional or Sequential model with
`Dropout` / `AlphaDropout` layers into a Monte-Carlo Dropout predictor
(Gal & Ghahramani, 2016) without retraining it and without touching it:

- Only the dropout layers are stochastic. The chapter's trick
  `model(x, training=True)` also switches BatchNormalization to training mode,
  which normalises each batch with its own statistics (a batch of one collapses
  to BatchNorm's offset) and overwrites the moving statistics of the model.
- The layers that come before the first dropout layer are deterministic, so they
  run once per input; only the rest of the network is sampled, `num_samples`
  times per input, as one large batch inside one compiled function. Inputs are
  processed in chunks of `batch_size`, which bounds memory.

`expected_calibration_error` and `reliability_diagram` show whether MC averaging
made the predicted probabilities better calibrated.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
from keras import ops

# Keras 3 keeps the graph of a Functional model in private structures; the few
# we rely on are imported here, in one place.
from keras.src.backend.common.masking import get_keras_mask, set_keras_mask  # noqa: I001
from keras.src.models.functional import Functional

from keras_recipes import _validation as v
from keras_recipes.layers import MCAlphaDropout, MCDropout

DROPOUT_TYPES = (keras.layers.Dropout, keras.layers.AlphaDropout, keras.layers.GaussianDropout)
TASKS = ("auto", "classification", "regression")

# Dropout classes whose behaviour `_Run.dropout` reproduces with shared masks;
# other subclasses run their own `call` in training mode.
_NATIVE_DROPOUT = (
    keras.layers.Dropout,
    keras.layers.AlphaDropout,
    keras.layers.GaussianDropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    MCDropout,
    MCAlphaDropout,
)

# Rows (inputs x samples) evaluated in one call when `batch_size` is not given.
_DEFAULT_ROWS_PER_CALL = 8192


# --------------------------------------------------------------------------- #
# Result
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class MCDropoutResult:
    """The Monte-Carlo Dropout statistics of a batch of inputs.

    All arrays are NumPy arrays whose first axis runs over the inputs.

    Attributes:
        mean: the mean prediction over the samples, same shape as
            `model.predict(x)`. For classification these are probabilities
            (after the softmax or sigmoid, also when the model outputs logits).
        std: the standard deviation over the samples (population, `ddof=0`),
            same shape as `mean`.
        entropy: classification only (else `None`): the predictive entropy in
            nats, `H[mean]`, the total uncertainty. Shape `(n,)` for softmax
            and for one sigmoid unit; `(n, k)` (one per label) for `k > 1`
            sigmoid units.
        mutual_information: classification only (else `None`): the epistemic
            part of the entropy, `H[mean] - mean_s H[p_s]`, in nats, >= 0; same
            shape as `entropy`. It is high where the dropout samples disagree.
        task: `"classification"` or `"regression"`.
        num_samples: int, the number of Monte-Carlo samples per input.
        samples: the samples, shape `(num_samples, n, ...)` (probabilities for
            a classifier with `from_logits=True`), when
            `predict(..., return_samples=True)`; else `None`.
    """

    mean: np.ndarray
    std: np.ndarray
    entropy: np.ndarray | None
    mutual_information: np.ndarray | None
    task: str
    num_samples: int
    samples: np.ndarray | None = None
    _kind: str = dataclasses.field(default="regression", repr=False)

    def predict_classes(self):
        """The predicted class of each input from the MC mean.

        Returns:
            An int NumPy array: the argmax over the last axis for softmax
            outputs; `mean > 0.5` for sigmoid outputs (shape `(n,)` for one
            unit, `(n, k)` for `k` labels).

        Raises:
            ValueError: for a regression result.
        """
        return _classes(self.mean, self._kind)


def _classes(mean, kind):
    if kind == "softmax":
        return np.argmax(mean, axis=-1)
    if kind == "sigmoid":
        classes = (mean > 0.5).astype("int64")
        return classes[..., 0] if classes.shape[-1] == 1 else classes
    raise ValueError(
        "`predict_classes` needs a classification model. This predictor has "
        "task='regression'; use `predict(x).mean` for its predictions, or pass "
        "task='classification' if the model outputs class probabilities."
    )


# --------------------------------------------------------------------------- #
# Statistics (keras.ops, run inside the compiled sampler)
# --------------------------------------------------------------------------- #
def _xlogx(p):
    positive = ops.greater(p, 0.0)
    return ops.where(positive, p * ops.log(ops.where(positive, p, 1.0)), 0.0)


def _shifted_mean(values, axis):
    """Mean along `axis`, computed as first + mean(differences to the first).

    Identical samples give back the first sample exactly (no rounding from the
    summation), so with every dropout rate at 0 the mean equals the plain
    prediction bit for bit and the standard deviation is exactly 0.
    """
    first = ops.take(values, [0], axis=axis)
    diff = values - first
    mean_diff = ops.mean(diff, axis=axis)
    return ops.squeeze(first, axis=axis) + mean_diff, diff, mean_diff


def mc_statistics(samples, kind, from_logits=False):
    """Monte-Carlo statistics of `samples` of shape `(batch, num_samples, ...)`.

    Args:
        samples: tensor, the model outputs, samples along axis 1.
        kind: str, `"softmax"`, `"sigmoid"` or `"regression"`.
        from_logits: bool, whether the samples are logits.

    Returns:
        A dict of tensors with `mean` and `std`, plus `entropy`, `mean_entropy`
        and `mutual_information` for the classification kinds.
    """
    y = ops.cast(samples, "float32")
    if from_logits:
        y = ops.softmax(y, axis=-1) if kind == "softmax" else ops.sigmoid(y)
    mean, diff, mean_diff = _shifted_mean(y, axis=1)
    variance = ops.mean(ops.square(diff), axis=1) - ops.square(mean_diff)
    out = {"mean": mean, "std": ops.sqrt(ops.maximum(variance, 0.0))}
    if kind == "regression":
        return out
    if kind == "softmax":
        entropy = -ops.sum(_xlogx(mean), axis=-1)
        sample_entropy = -ops.sum(_xlogx(y), axis=-1)
    else:
        entropy = -(_xlogx(mean) + _xlogx(1.0 - mean))
        sample_entropy = -(_xlogx(y) + _xlogx(1.0 - y))
    mean_entropy, _, _ = _shifted_mean(sample_entropy, axis=1)
    out["entropy"] = entropy
    out["mean_entropy"] = mean_entropy
    out["mutual_information"] = ops.maximum(entropy - mean_entropy, 0.0)
    if from_logits:
        out["probabilities"] = y
    return out


# --------------------------------------------------------------------------- #
# Graph analysis
# --------------------------------------------------------------------------- #
def _graph(model):
    """The Functional graph to walk for `model`, or None if it has none."""
    if isinstance(model, keras.Sequential):
        return model._functional
    if isinstance(model, Functional):
        return model
    return None


def _graph_children(model):
    """The operations of a Functional or Sequential model, in graph order."""
    graph = _graph(model)
    if graph is not None:
        return list(graph.operations)
    return list(model.layers)


def _is_graph_model(layer):
    return isinstance(layer, Functional) or isinstance(layer, keras.Sequential)


def _has_active_rate(layer):
    return float(getattr(layer, "rate", 0.0)) > 0.0


def _find_dropout_layers(model):
    """Walks the model's graph, nested models included.

    Returns:
        `(found, opaque)`: `found` lists the dropout layers reachable through
        Functional/Sequential graphs, in order, without duplicates; `opaque`
        lists `(owner, dropout_layer)` for active dropout layers hidden inside
        subclassed layers, which cannot be switched on alone.
    """
    found, opaque, seen = [], [], set()

    def visit(container):
        for op in _graph_children(container):
            if id(op) in seen:
                continue
            seen.add(id(op))
            if isinstance(op, DROPOUT_TYPES):
                found.append(op)
            elif _is_graph_model(op):
                visit(op)
            elif isinstance(op, keras.layers.Layer):
                for inner in op._flatten_layers(include_self=False, recursive=True):
                    if isinstance(inner, DROPOUT_TYPES) and _has_active_rate(inner):
                        opaque.append((op, inner))

    visit(model)
    return found, opaque


def _contains_any(model, ids):
    """Whether a graph model contains (at any depth) an operation in `ids`."""
    for op in _graph_children(model):
        if id(op) in ids:
            return True
        if _is_graph_model(op) and _contains_any(op, ids):
            return True
    return False


def _output_operation(model):
    """The operation that produces the model's (single) output, through nested models."""
    graph = _graph(model)
    if graph is None:
        op = model.layers[-1]
    else:
        op = graph.outputs[0]._keras_history.operation
    if _is_graph_model(op):
        return _output_operation(op)
    return op


def _output_activation(model):
    """`"softmax"`, `"sigmoid"` or None: the activation ending the model."""
    op = _output_operation(model)
    if isinstance(op, keras.layers.Softmax):
        return "softmax"
    activation = getattr(op, "activation", None)
    name = getattr(activation, "__name__", "")
    if name in ("softmax", "sigmoid"):
        return name
    return None


# --------------------------------------------------------------------------- #
# The sampler: the model's graph re-run with dropout on and the prefix shared
# --------------------------------------------------------------------------- #
class _Run:
    """Per-call state: which tensors are already tiled `num_samples` times."""

    def __init__(self, sampler, num_samples=None):
        self.sampler = sampler
        self.num_samples = num_samples or sampler.num_samples
        self.tiled = {}
        self.tiles = {}

    def is_tiled(self, tensor):
        return id(tensor) in self.tiled

    def mark(self, tensors):
        for tensor in keras.tree.flatten(tensors):
            if ops.is_tensor(tensor):
                self.tiled[id(tensor)] = tensor

    def tile(self, tensor):
        """Repeats each row `num_samples` times: row `b * S + s` is input b, sample s."""
        if not ops.is_tensor(tensor) or self.is_tiled(tensor) or self.num_samples == 1:
            return tensor
        cached = self.tiles.get(id(tensor))
        if cached is not None and cached[0] is tensor:
            return cached[1]
        tiled = ops.repeat(tensor, self.num_samples, axis=0)
        mask = get_keras_mask(tensor)
        if mask is not None:
            set_keras_mask(tiled, ops.repeat(mask, self.num_samples, axis=0))
        self.tiles[id(tensor)] = (tensor, tiled)
        self.mark(tiled)
        return tiled

    def dropout(self, layer, clone, x):
        """Applies `layer`'s dropout to the tiled `x`, with masks of shape `(B or 1, S, ...)`."""
        rate = float(layer.rate)
        generator = getattr(clone, "seed_generator", None)
        if rate == 0.0 or generator is None:
            return x
        num_samples = self.num_samples
        shape = ops.shape(x)
        if isinstance(layer, keras.layers.GaussianDropout):
            noise_shape = None
        elif hasattr(layer, "_get_noise_shape"):  # SpatialDropout1D/2D/3D
            noise_shape = layer._get_noise_shape(x)
        else:
            noise_shape = layer.noise_shape
        rest = [
            shape[i] if noise_shape is None or noise_shape[i] is None else noise_shape[i]
            for i in range(1, len(shape))
        ]
        shared = self.sampler.share_masks or (noise_shape is not None and noise_shape[0] == 1)
        batch = 1 if shared else shape[0] // num_samples
        mask_shape = (batch, num_samples, *rest)
        y = ops.reshape(x, (-1, num_samples, *shape[1:]))
        dtype = y.dtype
        if isinstance(layer, keras.layers.GaussianDropout):
            stddev = math.sqrt(rate / (1.0 - rate))
            noise = keras.random.normal(mask_shape, mean=1.0, stddev=stddev, seed=generator)
            y = y * ops.cast(noise, dtype)
        else:
            keep = ops.greater_equal(keras.random.uniform(mask_shape, seed=generator), rate)
            if isinstance(layer, keras.layers.AlphaDropout):
                # Keras's AlphaDropout, written out.
                alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
                a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
                b = -a * alpha_p * rate
                kept = ops.cast(keep, dtype)
                y = a * (y * kept + alpha_p * (1 - kept)) + b
            else:
                # Scale the (small, when shared) mask rather than the activations:
                # one pass over the sampled tensor.
                y = y * (ops.cast(keep, dtype) * (1.0 / (1.0 - rate)))
        outputs = ops.reshape(y, shape)
        mask = get_keras_mask(x)
        if mask is not None:  # dropout layers pass masks through
            set_keras_mask(outputs, mask)
        return outputs

    def run_model(self, model, inputs, top_level=False):
        graph = _graph(model)
        if graph is None:  # a Sequential model without a graph: a chain of layers
            x = inputs
            for layer in model.layers:
                x = self.operation_fn(layer)(x)
            return x
        if top_level:
            flat = graph._standardize_inputs(inputs)
        else:
            flat = keras.tree.flatten(inputs)
            if len(flat) != len(graph.inputs):
                flat = graph._standardize_inputs(inputs)
        outputs = graph._run_through_graph(flat, operation_fn=self.operation_fn)
        flat_outputs = keras.tree.flatten(outputs)
        return flat_outputs[0] if len(flat_outputs) == 1 else outputs

    def operation_fn(self, op):
        sampler = self.sampler
        index = sampler._clone_index.get(id(op))
        if index is not None:
            clone = sampler.mc_layers[index]

            def call_dropout(inputs, *args, **kwargs):
                x = self.tile(inputs)
                if type(op) in _NATIVE_DROPOUT and not args:
                    outputs = self.dropout(op, clone, x)
                else:  # an unknown subclass: its own call, forced into training mode
                    kwargs["training"] = True
                    outputs = clone(x, *args, **kwargs)
                self.mark(outputs)
                return outputs

            return call_dropout

        if id(op) in sampler._inline_ids:

            def call_nested(*args, **kwargs):
                inputs = args[0] if args else kwargs["inputs"]
                return self.run_model(op, inputs)

            return call_nested

        def call_deterministic(*args, **kwargs):
            tensors = keras.tree.flatten((args, kwargs))
            tiled = any(self.is_tiled(t) for t in tensors if ops.is_tensor(t))
            if tiled:
                args, kwargs = keras.tree.map_structure(self.tile, (args, kwargs))
            if "training" in getattr(op, "_call_context_args", ()):
                kwargs["training"] = False
            outputs = op(*args, **kwargs)
            if tiled:
                self.mark(outputs)
            return outputs

        return call_deterministic


class _Sampler(keras.Model):
    """Runs the target model with its dropout layers on; outputs MC statistics.

    The target's layers are called, never changed: non-dropout layers with
    `training=False`, dropout layers through seeded copies with `training=True`.
    """

    def __init__(self, target, clones, clone_ids, inline_ids, num_samples, kind,
                 from_logits, return_samples, share_masks):
        super().__init__(name="mc_dropout_sampler")
        self.target = target
        self.mc_layers = list(clones)
        self._clone_index = {layer_id: i for i, layer_id in enumerate(clone_ids)}
        self._inline_ids = set(inline_ids)
        self.num_samples = num_samples
        self.kind = kind
        self.from_logits = from_logits
        self.return_samples = return_samples
        self.share_masks = share_masks
        self.built = True

    def call(self, inputs):
        if all(float(layer.rate) == 0.0 for layer in self.mc_layers):
            # Nothing is random: one pass, copied, so that std is exactly 0.
            y = _Run(self, num_samples=1).run_model(self.target, inputs, top_level=True)
            y = ops.repeat(ops.expand_dims(y, 1), self.num_samples, axis=1)
        else:
            run = _Run(self)
            y = run.tile(run.run_model(self.target, inputs, top_level=True))
            shape = ops.shape(y)
            y = ops.reshape(y, (-1, self.num_samples) + tuple(shape[1:]))
        out = mc_statistics(y, self.kind, self.from_logits)
        if self.return_samples:
            out["samples"] = out.pop("probabilities", ops.cast(y, "float32"))
        else:
            out.pop("probabilities", None)
        return out


# --------------------------------------------------------------------------- #
# Public predictor
# --------------------------------------------------------------------------- #
class MCDropoutPredictor:
    """Monte-Carlo Dropout predictions from any trained model with dropout layers.

    Draws `num_samples` predictions per input with every `Dropout`,
    `AlphaDropout` and `GaussianDropout` layer switched on (including subclasses
    such as `SpatialDropout2D` and `keras_recipes.layers.MCDropout`) and
    everything else in inference mode, and summarises them: `mean` and `std`,
    plus predictive `entropy` and `mutual_information` for classifiers. It works
    on Sequential and Functional models, nested models included (a transfer model
    whose frozen base is called with `training=False`), without retraining and
    without changing the model: its weights, BatchNorm moving statistics and the
    random state of its dropout layers are left as they were.

    How it is fast: the layers before the first dropout layer are deterministic,
    so they run once per input; only the rest of the graph runs on the inputs
    repeated `num_samples` times, as one large batch inside one compiled
    function (`keras.Model.predict`, so on any backend). Inputs are processed
    `batch_size` at a time, so at most `batch_size * num_samples` rows are in
    flight. Keras ships no MC-Dropout predictor; the chapter's loop
    `np.stack([model(x, training=True) for _ in range(100)])` also switches
    BatchNorm to training mode, which normalises each batch with its own
    statistics and overwrites the moving statistics.

    Limits: the model must have a single output; `GaussianNoise` is not
    sampled (it is additive noise, not dropout); dropout inside a subclassed
    layer (for example `MultiHeadAttention(dropout=0.1)`) or the `dropout=`
    arguments of recurrent layers cannot be switched on alone: a model with such
    active dropout gets an error unless `dropout_layers` names the layers to
    sample.

    Args:
        model: a built `keras.Model` (Functional or Sequential) with at least
            one `Dropout`, `AlphaDropout` or `GaussianDropout` layer.
        num_samples: int >= 2, Monte-Carlo samples per input. Defaults to `100`.
        seed: int or None. With an int, every `predict` call with the same
            inputs returns the same result (also across predictors); with
            `None` each call draws fresh randomness (from the operating system,
            leaving Python's and NumPy's global random state alone). Defaults to
            `None`.
        batch_size: int or None, inputs per compiled call; memory grows with
            `batch_size * num_samples`. `None` picks
            `max(1, 8192 // num_samples)`. Ignored when `x` is a dataset, whose
            own batches are used. Defaults to `None`.
        task: str, `"auto"`, `"classification"` or `"regression"`. `"auto"`
            means classification when the model ends in a softmax or sigmoid (or
            `from_logits=True`), else regression. Defaults to `"auto"`.
        from_logits: bool, whether a classifier outputs logits; the samples are
            then passed through a softmax (several units) or a sigmoid (one unit)
            before averaging. Defaults to `False`.
        dropout_layers: list of str or None, the names of the dropout layers to
            sample (the others stay off). `None` samples all of them. Defaults
            to `None`.
        share_masks: bool, whether the inputs of one chunk share their
            `num_samples` dropout masks. Each input still gets `num_samples`
            independent masks, so every per-input statistic (`mean`, `std`,
            `entropy`, `mutual_information`) has exactly the distribution of the
            chapter's loop; only the Monte-Carlo errors of different inputs in a
            chunk become correlated. On CPU, drawing the random numbers is the
            main cost of sampling a dense network, and sharing makes it
            `batch_size` times cheaper. Set it to `False` for independent masks
            per input, as `model(x, training=True)` draws them, for instance
            when averaging a statistic over many inputs whose Monte-Carlo error
            matters. Defaults to `True`.
        jit_compile: bool or `"auto"`, XLA compilation of the sampler, as in
            `keras.Model.compile`. Defaults to `"auto"`.

    Returns:
        An `MCDropoutPredictor`; call `predict(x)` or `predict_classes(x)`.

    Raises:
        TypeError: if `model` is not a Functional or Sequential `keras.Model`,
            or an argument has the wrong type.
        ValueError: if the model has no dropout layer, has several outputs, is
            not built, or an argument is out of range.

    Example:

    >>> import numpy as np, keras, keras_recipes
    >>> model = keras.Sequential([
    ...     keras.Input((8,)),
    ...     keras.layers.Dense(32, activation="relu"),
    ...     keras.layers.BatchNormalization(),
    ...     keras.layers.Dropout(0.3),
    ...     keras.layers.Dense(3, activation="softmax"),
    ... ])
    >>> x = np.random.default_rng(0).normal(size=(5, 8)).astype("float32")
    >>> predictor = keras_recipes.MCDropoutPredictor(model, num_samples=50, seed=0)
    >>> result = predictor.predict(x)
    >>> result.mean.shape, result.std.shape, result.entropy.shape
    ((5, 3), (5, 3), (5,))
    >>> predictor.predict_classes(x).shape
    (5,)
    """

    def __init__(
        self,
        model,
        num_samples=100,
        seed=None,
        batch_size=None,
        task="auto",
        from_logits=False,
        dropout_layers=None,
        share_masks=True,
        jit_compile="auto",
    ):
        self._check_model(model)
        self.num_samples = v.check_int("num_samples", num_samples, min_value=2)
        self.seed = v.check_int("seed", seed, min_value=0, allow_none=True)
        self.batch_size = v.check_int("batch_size", batch_size, min_value=1, allow_none=True)
        task = v.check_choice("task", task, TASKS)
        self.from_logits = v.check_bool("from_logits", from_logits)
        self.share_masks = v.check_bool("share_masks", share_masks)
        if not (jit_compile == "auto" or isinstance(jit_compile, bool)):
            v.fail("jit_compile", jit_compile, "True, False or 'auto'", error=TypeError)
        self.jit_compile = jit_compile
        self.model = model

        found, opaque = _find_dropout_layers(model)
        if not found:
            hidden = (
                f" Its active dropout is inside subclassed layer(s) "
                f"{sorted({owner.name for owner, _ in opaque})}, which cannot be "
                "switched on alone." if opaque else ""
            )
            v.fail(
                "model",
                model.name,
                "a model with at least one Dropout, AlphaDropout or GaussianDropout layer "
                "(Monte-Carlo Dropout samples those layers)",
                hint=f"{hidden} Add dropout (for example keras_recipes.layers.MCDropout) "
                "and train the model with it first".strip(),
            )
        selected = self._select(found, opaque, dropout_layers)
        self.dropout_layers = [layer.name for layer in selected]
        self._kind, self.task = self._resolve_kind(task)

        self._selected = selected
        self._clone_seeds = [None] * len(selected)
        self._samplers = {}

    # -- construction helpers ------------------------------------------------
    @staticmethod
    def _check_model(model):
        if not isinstance(model, keras.Model):
            v.fail("model", model, "a keras.Model (Functional or Sequential)", error=TypeError)
        if isinstance(model, keras.Sequential) and (not model.built or _graph(model) is None):
            v.fail("model", model.name, "a built model",
                   hint="Give the Sequential model an Input, or call it on data, first")
        if _graph(model) is None and not isinstance(model, keras.Sequential):
            v.fail(
                "model",
                model.name,
                "a Functional or Sequential keras.Model",
                hint=f"(received a subclassed {type(model).__name__}, whose call() cannot be "
                "inspected). Rebuild it with the functional API, or use "
                "keras_recipes.layers.MCDropout in it and average repeated model.predict calls",
                error=TypeError,
            )
        outputs = _graph(model).outputs if _graph(model) is not None else [None]
        if len(outputs) != 1:
            v.fail(
                "model",
                model.name,
                "a model with a single output",
                hint=f"(it has {len(outputs)}). Predict one output at a time with "
                "keras.Model(model.inputs, model.outputs[i])",
            )

    @staticmethod
    def _select(found, opaque, dropout_layers):
        if dropout_layers is None:
            if opaque:
                owners = sorted({owner.name for owner, _ in opaque})
                v.fail(
                    "dropout_layers",
                    None,
                    "a list naming the dropout layers to sample when the model also has active "
                    f"dropout inside subclassed layers {owners}",
                    hint="(those cannot be switched on without switching the whole layer to "
                    "training mode). Pass the layers to sample, e.g. dropout_layers="
                    f"{[layer.name for layer in found]}",
                )
            return list(found)
        if isinstance(dropout_layers, str) or not isinstance(dropout_layers, (list, tuple)):
            v.fail("dropout_layers", dropout_layers, "a list of layer names or None",
                   error=TypeError)
        if not dropout_layers:
            v.fail("dropout_layers", dropout_layers, "a non-empty list of layer names or None")
        by_name = {layer.name: layer for layer in found}
        selected = []
        for name in dropout_layers:
            name = v.check_choice("dropout_layers", name, list(by_name), case_sensitive=True)
            if by_name[name] not in selected:
                selected.append(by_name[name])
        return selected

    def _resolve_kind(self, task):
        activation = _output_activation(self.model)
        if task == "regression":
            if self.from_logits:
                v.fail("from_logits", True, "False when task='regression'")
            return "regression", "regression"
        if self.from_logits:
            if activation is not None:
                v.fail(
                    "from_logits",
                    True,
                    f"False for this model, whose output layer already applies {activation}",
                    hint="(from_logits=True would apply it twice)",
                )
            units = _graph(self.model).outputs[0].shape[-1] if _graph(self.model) else None
            return ("sigmoid" if units == 1 else "softmax"), "classification"
        if activation is not None:
            return activation, "classification"
        if task == "classification":
            units = _graph(self.model).outputs[0].shape[-1] if _graph(self.model) else None
            return ("sigmoid" if units == 1 else "softmax"), "classification"
        return "regression", "regression"

    def _sampler(self, return_samples):
        sampler = self._samplers.get(return_samples)
        if sampler is None:
            clones = []
            for layer in self._selected:
                config = layer.get_config()
                config["name"] = f"{layer.name}_mc"
                if "seed" in config:  # the state is set per call; avoid Python's global RNG
                    config["seed"] = 0
                clones.append(type(layer).from_config(config))
            clone_ids = [id(layer) for layer in self._selected]
            inline_ids = {
                id(op)
                for op in _all_graph_models(self.model)
                if _contains_any(op, set(clone_ids))
            }
            sampler = _Sampler(self.model, clones, clone_ids, inline_ids, self.num_samples,
                               self._kind, self.from_logits, return_samples, self.share_masks)
            jit_compile = self.jit_compile
            if jit_compile == "auto" and keras.backend.backend() == "tensorflow":
                # XLA's random number generation on CPU is several times slower than
                # TensorFlow's kernels; the sampler is a tf.function either way.
                jit_compile = False
            sampler.compile(jit_compile=jit_compile)
            self._samplers[return_samples] = sampler
        return sampler

    def _seed_clones(self, sampler):
        """Sets each dropout copy's generator: from `seed`, or fresh OS entropy."""
        generators = [getattr(layer, "seed_generator", None) for layer in sampler.mc_layers]
        entropy = self.seed if self.seed is not None else None
        states = np.random.SeedSequence(entropy).generate_state(len(generators) or 1)
        for generator, state in zip(generators, states):
            if generator is not None:
                value = np.array([int(state) & 0x7FFFFFFF, 0])
                generator.state.assign(ops.cast(value, generator.state.dtype))

    # -- prediction ----------------------------------------------------------
    def predict(self, x, return_samples=False):
        """Monte-Carlo Dropout statistics of the model's predictions on `x`.

        Args:
            x: the model's input: a NumPy array (or a list / dict of arrays for a
                multi-input model), a backend tensor, or a `tf.data.Dataset` /
                `keras.utils.PyDataset` yielding input batches.
            return_samples: bool, whether to also return every sample (memory:
                `num_samples` times the output). Defaults to `False`.

        Returns:
            An `MCDropoutResult` with NumPy `mean`, `std`, and for classifiers
            `entropy` and `mutual_information`.

        Raises:
            ValueError: if `x` is empty, contains NaN or Inf, or does not match
                the model's input shape.
        """
        v.check_bool("return_samples", return_samples)
        data, num_rows = self._standardize_x(x)
        sampler = self._sampler(return_samples)
        self._seed_clones(sampler)
        if num_rows is None:  # a dataset: its own batches
            out = sampler.predict(data, verbose=0)
        else:
            batch = self.batch_size or max(1, _DEFAULT_ROWS_PER_CALL // self.num_samples)
            batch = min(batch, num_rows)
            padded = -num_rows % batch
            if padded:  # every call has the same shape: one trace, one compilation
                data = keras.tree.map_structure(lambda a: _pad_rows(a, padded), data)
            # `predict_on_batch` per chunk: `predict` would add a tf.data pipeline and
            # callbacks, a fixed cost larger than sampling a small model.
            chunks = [
                sampler.predict_on_batch(
                    keras.tree.map_structure(lambda a, i=start: a[i:i + batch], data))
                for start in range(0, num_rows + padded, batch)
            ]
            out = {key: np.concatenate([c[key] for c in chunks])[:num_rows]
                   for key in chunks[0]}
        return self._result(out)

    def predict_classes(self, x):
        """The class predicted for each input from the Monte-Carlo mean.

        Args:
            x: the model's input, as for `predict`.

        Returns:
            An int NumPy array: argmax of the mean probabilities (softmax), or
            `mean > 0.5` (sigmoid; shape `(n,)` for a single unit).

        Raises:
            ValueError: if the predictor's task is regression.
        """
        if self._kind == "regression":
            _classes(None, self._kind)
        return self.predict(x).predict_classes()

    def _result(self, out):
        entropy = out.get("entropy")
        mutual_information = out.get("mutual_information")
        if self._kind == "sigmoid" and entropy is not None and entropy.shape[-1] == 1:
            entropy, mutual_information = entropy[..., 0], mutual_information[..., 0]
        samples = out.get("samples")
        if samples is not None:
            samples = np.moveaxis(samples, 1, 0)
        return MCDropoutResult(
            mean=out["mean"],
            std=out["std"],
            entropy=entropy,
            mutual_information=mutual_information,
            task=self.task,
            num_samples=self.num_samples,
            samples=samples,
            _kind=self._kind,
        )

    def _standardize_x(self, x):
        """Checks `x` against the model inputs; returns `(data, num_rows)`.

        `num_rows` is None for datasets, which are passed through.
        """
        if x is None:
            v.fail("x", x, "the model's input: an array, a list or dict of arrays, or a dataset",
                   error=TypeError)
        if _is_dataset(x):
            return x, None
        inputs = _graph(self.model).inputs
        if isinstance(x, dict):
            names = [t.name for t in inputs]
            missing = [n for n in names if n not in x]
            if missing:
                v.fail("x", f"<dict with keys {sorted(x)}>",
                       f"a dict with the model's input names {names}")
            arrays = {n: np.asarray(x[n]) for n in names}
            items = [(n, arrays[n], t) for n, t in zip(names, inputs)]
            data = arrays
        else:
            flat = list(x) if isinstance(x, (list, tuple)) and len(inputs) > 1 else [x]
            if len(flat) != len(inputs):
                v.fail("x", f"<{len(flat)} arrays>", f"{len(inputs)} arrays, one per model input")
            arrays = [np.asarray(a) for a in flat]
            items = [(f"x[{i}]" if len(inputs) > 1 else "x", a, t)
                     for i, (a, t) in enumerate(zip(arrays, inputs))]
            data = arrays if len(inputs) > 1 else arrays[0]
        num_rows = None
        for name, array, reference in items:
            expected = tuple(reference.shape)
            described = "(None, " + ", ".join(str(d) for d in expected[1:]) + ")"
            if expected[1:] == ():
                described = "(None,)"
            if array.ndim != len(expected) or any(
                e is not None and e != d for e, d in zip(expected[1:], array.shape[1:])
            ):
                v.fail(name, f"<array of shape {array.shape}>",
                       f"an array of shape {described} to match the model's input")
            if array.shape[0] == 0:
                v.fail(name, f"<array of shape {array.shape}>", "a non-empty array")
            if num_rows is not None and array.shape[0] != num_rows:
                v.fail(name, f"<array of shape {array.shape}>",
                       f"{num_rows} rows like the other inputs")
            num_rows = array.shape[0]
            if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
                v.fail(name, "<array with NaN or Inf>", "finite values")
        return data, num_rows


def _all_graph_models(model):
    """The model and every Functional/Sequential model nested in it."""
    result = [model]
    for op in _graph_children(model):
        if _is_graph_model(op):
            result.extend(_all_graph_models(op))
    return result


def _pad_rows(array, count):
    """Appends `count` copies of the last row, so that chunks have equal shapes."""
    return np.concatenate([array, np.repeat(array[-1:], count, axis=0)], axis=0)


def _is_dataset(x):
    if isinstance(x, keras.utils.PyDataset):
        return True
    module = type(x).__module__
    return module.startswith("tensorflow") and hasattr(x, "element_spec")


# --------------------------------------------------------------------------- #
# Calibration
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class ReliabilityDiagram:
    """Per-bin confidence and accuracy: the data of a reliability diagram.

    Attributes:
        bin_edges: `(num_bins + 1,)` edges of the equal-width confidence bins.
        confidence: `(num_bins,)` mean confidence of the predictions in each
            bin (NaN for an empty bin).
        accuracy: `(num_bins,)` fraction of correct predictions in each bin (NaN
            for an empty bin).
        count: `(num_bins,)` number of predictions in each bin.
        expected_calibration_error: float, `sum_b count_b / n * |accuracy_b -
            confidence_b|`.
    """

    bin_edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    expected_calibration_error: float

    def plot(self, ax=None, label=None):
        """Draws the diagram (accuracy per bin against the diagonal) with matplotlib.

        Args:
            ax: a matplotlib `Axes` or None for the current one. Defaults to `None`.
            label: str or None, legend label of the bars. Defaults to `None`.

        Returns:
            The matplotlib `Axes`.

        Raises:
            ImportError: if matplotlib is not installed.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "ReliabilityDiagram.plot needs matplotlib: "
                'pip install "keras-recipes[cli]"'
            ) from error
        ax = ax if ax is not None else plt.gca()
        centers = (self.bin_edges[:-1] + self.bin_edges[1:]) / 2
        widths = np.diff(self.bin_edges)
        ax.bar(centers, np.nan_to_num(self.accuracy), width=widths, edgecolor="black",
               alpha=0.6, label=label or f"ECE = {self.expected_calibration_error:.3f}")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend()
        return ax


def _confidence_and_correct(y_true, y_prob):
    """Top-label confidence and correctness, validated."""
    prob = np.asarray(y_prob, dtype="float64")
    label = np.asarray(y_true)
    if prob.ndim == 0 or prob.size == 0:
        v.fail("y_prob", f"<array of shape {prob.shape}>",
               "a non-empty array of probabilities of shape (n, num_classes) or (n,)")
    if not np.all(np.isfinite(prob)) or prob.min() < 0 or prob.max() > 1:
        v.fail("y_prob", "<array with values outside [0, 1]>",
               "probabilities in [0, 1] (apply softmax or sigmoid to logits first)")
    binary = prob.ndim == 1 or (prob.ndim == 2 and prob.shape[1] == 1)
    if prob.ndim > 2:
        v.fail("y_prob", f"<array of shape {prob.shape}>",
               "an array of shape (n, num_classes) or (n,)")
    n = prob.shape[0]
    if binary:
        p1 = prob.reshape(n)
        predicted = (p1 > 0.5).astype("int64")
        confidence = np.where(predicted == 1, p1, 1.0 - p1)
        num_classes = 2
    else:
        predicted = np.argmax(prob, axis=1)
        confidence = prob[np.arange(n), predicted]
        num_classes = prob.shape[1]
    if label.ndim == 2 and label.shape[1] == num_classes and not binary:
        label = np.argmax(label, axis=1)  # one-hot
    elif label.ndim == 2 and label.shape[1] == 1:
        label = label[:, 0]
    if label.shape != (n,):
        v.fail("y_true", f"<array of shape {np.asarray(y_true).shape}>",
               f"{n} integer labels (shape ({n},)) or one-hot rows matching y_prob")
    if not np.all(np.equal(np.mod(label, 1), 0)) or label.min() < 0 or label.max() >= num_classes:
        v.fail("y_true", f"<labels in [{label.min()}, {label.max()}]>",
               f"integer labels in [0, {num_classes - 1}]")
    return confidence, (predicted == label.astype("int64")).astype("float64")


def reliability_diagram(y_true, y_prob, num_bins=15):
    """The data of a reliability diagram: accuracy against confidence per bin.

    Each prediction's confidence is the probability of its predicted (top)
    class; predictions are grouped in `num_bins` equal-width confidence bins
    `(lo, hi]` (the first bin also holds confidence 0), as in Guo et al.,
    "On Calibration of Modern Neural Networks" (2017). A perfectly calibrated
    model has accuracy equal to confidence in every bin. Keras has no
    calibration metric, hence this helper.

    Args:
        y_true: integer class labels of shape `(n,)`, or one-hot labels of shape
            `(n, num_classes)`.
        y_prob: predicted probabilities, shape `(n, num_classes)`, or `(n,)` /
            `(n, 1)` with the probability of class 1 for a binary classifier.
            For instance `MCDropoutPredictor(...).predict(x).mean` or
            `model.predict(x)`.
        num_bins: int, number of bins. Defaults to `15`.

    Returns:
        A `ReliabilityDiagram` with `bin_edges`, `confidence`, `accuracy`,
        `count`, `expected_calibration_error` and a `plot()` method.

    Raises:
        ValueError: if the probabilities are outside [0, 1], the labels are not
            integers in `[0, num_classes)`, or the shapes do not match.

    Example:

    >>> import numpy as np, keras_recipes
    >>> y_prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> y_true = np.array([0, 1, 1, 0])
    >>> diagram = keras_recipes.uncertainty.reliability_diagram(y_true, y_prob, num_bins=5)
    >>> diagram.count.tolist()
    [0, 0, 1, 2, 1]
    >>> round(diagram.expected_calibration_error, 3)
    0.25
    """
    num_bins = v.check_int("num_bins", num_bins, min_value=1)
    confidence, correct = _confidence_and_correct(y_true, y_prob)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # Bin b holds confidences in (edges[b], edges[b + 1]]; confidence 0 goes to bin 0.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
    count = np.bincount(index, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=num_bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=num_bins) / count
    filled = count > 0
    ece = float(np.sum(count[filled] / len(confidence)
                       * np.abs(accuracy[filled] - mean_confidence[filled])))
    return ReliabilityDiagram(edges, mean_confidence, accuracy, count, ece)


def expected_calibration_error(y_true, y_prob, num_bins=15):
    """The expected calibration error (ECE) of predicted probabilities.

    `ECE = sum_b (n_b / n) * |accuracy_b - confidence_b|` over `num_bins`
    equal-width bins of top-label confidence (Guo et al., 2017): 0 for a
    perfectly calibrated classifier, up to 1. Compare
    `expected_calibration_error(y, model.predict(x))` with
    `expected_calibration_error(y, MCDropoutPredictor(model).predict(x).mean)`
    to see whether Monte-Carlo averaging improved calibration.

    Args:
        y_true: integer class labels of shape `(n,)`, or one-hot labels.
        y_prob: probabilities of shape `(n, num_classes)`, or `(n,)` / `(n, 1)`
            for a binary classifier (probability of class 1).
        num_bins: int, number of confidence bins. Defaults to `15`.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: as `reliability_diagram`.

    Example:

    >>> import numpy as np, keras_recipes
    >>> y_prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> ece = keras_recipes.uncertainty.expected_calibration_error([0, 1, 1, 0], y_prob, 5)
    >>> round(ece, 3)
    0.25
    """
    return reliability_diagram(y_true, y_prob, num_bins).expected_calibration_error
