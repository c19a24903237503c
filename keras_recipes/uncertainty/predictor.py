"""`MCDropoutPredictor`: Monte-Carlo Dropout predictions from a trained model.

`MCDropoutPredictor` turns any trained Keras model with `Dropout` /
`AlphaDropout` layers (Functional, Sequential or subclassed) into a Monte-Carlo
Dropout predictor (Gal & Ghahramani, 2016) without retraining it and without
touching it;
`MCDropoutResult` holds the statistics of one `predict` call.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from keras_recipes import _keras_internals as ki
from keras_recipes import _validation as v
from keras_recipes.uncertainty import _analysis, _inputs, _sampler

__all__ = ["MCDropoutPredictor", "MCDropoutResult"]

_TASKS = ("auto", "classification", "regression")

# Rows (inputs x samples) evaluated in one call when `batch_size` is not given.
_DEFAULT_ROWS_PER_CALL = 8192


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


class MCDropoutPredictor:
    """Monte-Carlo Dropout predictions from any trained model with dropout layers.

    Draws `num_samples` predictions per input with every `Dropout`,
    `AlphaDropout` and `GaussianDropout` layer switched on (including subclasses
    such as `SpatialDropout2D` and `keras_recipes.layers.MCDropout`) and
    everything else in inference mode, and summarises them: `mean` and `std`,
    plus predictive `entropy` and `mutual_information` for classifiers. It works
    on Sequential, Functional and subclassed models, nested models included (a
    transfer model whose frozen base is called with `training=False`), without
    retraining and without changing the model: its weights, BatchNorm moving
    statistics and the random state of its dropout layers are left as they were.

    How it is fast: for a Functional or Sequential model, the layers before the
    first dropout layer are deterministic, so they run once per input; only the
    rest of the graph runs on the inputs repeated `num_samples` times, as one
    large batch inside one compiled function (`keras.Model.predict`, so on any
    backend). Inputs are processed `batch_size` at a time, so at most
    `batch_size * num_samples` rows are in flight. Keras ships no MC-Dropout
    predictor; the chapter's loop
    `np.stack([model(x, training=True) for _ in range(100)])` also switches
    BatchNorm to training mode, which normalises each batch with its own
    statistics and overwrites the moving statistics.

    A subclassed model's `call()` cannot be read, so the whole model runs on the
    repeated inputs (no shared prefix), with `training=False`, while its dropout
    layers (every `Dropout`, `AlphaDropout` or `GaussianDropout` layer tracked in
    it, at any depth, `MultiHeadAttention`'s included) sample: during the
    compiled call their `call` is replaced by one that samples, then restored.
    As for any model, BatchNorm stays in inference mode and nothing in the model
    changes. With `task="auto"` a subclassed model counts as a classifier when
    its last tracked layer (the last one assigned in `__init__`) ends in a
    softmax or sigmoid; pass `task` if that layer is not the output layer.

    Limits: the model must have a single output; `GaussianNoise` is not
    sampled (it is additive noise, not dropout); the `dropout=` arguments of
    recurrent layers are not sampled; in a Functional or Sequential model,
    dropout inside a subclassed layer (for example
    `MultiHeadAttention(dropout=0.1)`) cannot be switched on alone: a model with
    such active dropout gets an error unless `dropout_layers` names the layers
    to sample.

    Args:
        model: a built `keras.Model` (Functional, Sequential or subclassed)
            with at least one `Dropout`, `AlphaDropout` or `GaussianDropout`
            layer.
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
        TypeError: if `model` is not a `keras.Model`, or an argument has the
            wrong type.
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
        self.seed = v.check_seed(seed)
        self.batch_size = v.check_int("batch_size", batch_size, min_value=1, allow_none=True)
        task = v.check_choice("task", task, _TASKS)
        self.from_logits = v.check_bool("from_logits", from_logits)
        self.share_masks = v.check_bool("share_masks", share_masks)
        if not (jit_compile == "auto" or isinstance(jit_compile, bool)):
            v.fail("jit_compile", jit_compile, "True, False or 'auto'", error=TypeError)
        self.jit_compile = jit_compile
        self.model = model

        self._graph = ki.functional_graph(model)
        if self._graph is not None:
            found, opaque = _analysis.find_dropout_layers(model)
        else:  # a subclassed model: all its dropout layers can be made to sample
            found, opaque = _analysis.tracked_dropout_layers(model), []
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
        self._samplers = {}

    # -- construction helpers ------------------------------------------------
    @staticmethod
    def _check_model(model):
        if not isinstance(model, keras.Model):
            v.fail("model", model, "a keras.Model", error=TypeError)
        graph = ki.functional_graph(model)
        if isinstance(model, keras.Sequential) and (not model.built or graph is None):
            v.fail("model", model.name, "a built model",
                   hint="Give the Sequential model an Input, or call it on data, first")
        if graph is None:  # subclassed: the single output is checked when it is sampled
            if not model.built:
                v.fail("model", model.name, "a built model",
                       hint="Call the model on a batch of data, or train it, first")
            return
        if len(graph.outputs) != 1:
            v.fail(
                "model",
                model.name,
                "a model with a single output",
                hint=f"(it has {len(graph.outputs)}). Predict one output at a time with "
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
        activation = _analysis.output_activation(self.model)
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
            return self._classifier_kind(), "classification"
        if activation is not None:
            return activation, "classification"
        if task == "classification":
            return self._classifier_kind(), "classification"
        return "regression", "regression"

    def _classifier_kind(self):
        """`"sigmoid"` or `"softmax"`; `"classifier"` while the output units are unknown."""
        if self._graph is None:  # a subclassed model: decided on its first output
            return "classifier"
        return _sampler.classifier_kind(self._graph.outputs[0].shape[-1])

    def _sampler_for(self, return_samples):
        sampler = self._samplers.get(return_samples)
        if sampler is None:
            clones = _sampler.make_clones(self._selected)
            options = _sampler.SamplerOptions(self.num_samples, self._kind, self.from_logits,
                                              return_samples, self.share_masks)
            if self._graph is None:
                sampler = _sampler.DropoutSampler(self.model, self._selected, clones, options)
            else:
                clone_ids = [id(layer) for layer in self._selected]
                inline_ids = _analysis.graph_models_containing(self.model, self._selected)
                sampler = _sampler.GraphSampler(self.model, clones, clone_ids, inline_ids,
                                                options)
            _sampler.compile_sampler(sampler, self.jit_compile)
            self._samplers[return_samples] = sampler
        return sampler

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
        data, num_rows = _inputs.standardize_x(self.model, x)
        sampler = self._sampler_for(return_samples)
        _sampler.seed_clones(sampler.mc_layers, self.seed)
        if num_rows is None:  # a dataset: its own batches
            out = sampler.predict(data, verbose=0)
        else:
            batch = self.batch_size or max(1, _DEFAULT_ROWS_PER_CALL // self.num_samples)
            batch = min(batch, num_rows)
            padded = -num_rows % batch
            if padded:  # every call has the same shape: one trace, one compilation
                data = keras.tree.map_structure(lambda a: _inputs.pad_rows(a, padded), data)
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
        if self._kind == "classifier":  # a subclassed model's output, now known
            mean = out["mean"]
            self._kind = _sampler.classifier_kind(mean.shape[-1] if mean.ndim > 1 else None)
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
