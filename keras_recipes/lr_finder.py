"""The learning-rate range test ("LR finder") and its suggestion rules.

`find_learning_rate` trains a compiled model for a few batches while the learning
rate grows exponentially, records the loss, and suggests a learning rate. The
model comes back exactly as it was: weights, non-trainable state (BatchNorm
statistics, dropout seeds), metric state and optimizer state (iterations, slots,
learning rate or schedule), also when the run raises or is interrupted.

Keras ships no LR finder. The ramp runs inside the compiled train step: the
optimizer's learning rate is swapped for an exponential-ramp
`LearningRateSchedule` evaluated from `iterations`, and a fresh train function
is traced for the run (a Python write of the learning rate between batches is
ignored by compiled training on some backends, and refused on optimizers built
with a schedule). The suggestion rules `valley`, `minimum` and `steepest` follow
fastai's `lr_find` and are pure functions of the recorded curve.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time

import keras
import numpy as np
from keras import ops

from keras_recipes import _validation as v

__all__ = ["LRFinderResult", "find_learning_rate", "minimum", "steepest", "valley"]

SUGGESTION_METHODS = ("valley", "minimum", "steepest")


# ---------------------------------------------------------------------------
# Pure suggestion rules
# ---------------------------------------------------------------------------


def _curve(learning_rates, losses, fn_name):
    """Validates a recorded curve; returns the finite points as float64 arrays."""
    try:
        lrs = np.asarray(learning_rates, dtype="float64").reshape(-1)
        values = np.asarray(losses, dtype="float64").reshape(-1)
    except (TypeError, ValueError):
        v.fail(
            "learning_rates",
            learning_rates,
            f"a 1-D sequence of numbers (and `losses` too) for `{fn_name}`",
            error=TypeError,
        )
    if lrs.shape != values.shape:
        v.fail(
            "losses",
            f"<{values.size} values>",
            f"as long as `learning_rates` ({lrs.size} values)",
        )
    if np.any(~np.isfinite(lrs)) or np.any(lrs <= 0):
        v.fail("learning_rates", learning_rates, "finite and > 0")
    keep = np.isfinite(values)
    lrs, values = lrs[keep], values[keep]
    if lrs.size < 2:
        v.fail(
            "losses",
            losses,
            "a curve with at least 2 finite values",
            hint="(the loss was NaN or infinite almost from the start: lower "
            "`min_learning_rate` or check the data)",
        )
    return lrs, values


def valley(learning_rates, losses):
    """Suggests the learning rate in the middle of the longest valley of the loss curve.

    The "valley" is the longest strictly decreasing subsequence of the loss
    (read in order of increasing learning rate); the suggestion is the point
    about halfway through it, as in fastai's `valley` rule (the default of
    `lr_find` since fastai 2.4). It is robust to noise at both ends of the curve
    and lands about one order of magnitude below the minimum. Non-finite losses
    are ignored. Pure: the inputs are not modified.

    Args:
        learning_rates: 1-D sequence of positive floats, increasing.
        losses: 1-D sequence of floats, the (smoothed) loss at each learning rate.

    Returns:
        The suggested learning rate, a Python float.

    Raises:
        ValueError: if the sequences differ in length, a learning rate is not
            positive, or fewer than 2 losses are finite.

    Example:

    >>> import numpy as np
    >>> from keras_recipes.lr_finder import valley
    >>> lrs = np.logspace(-5, 0, 11)
    >>> valley(lrs, [3, 3, 2.9, 2.5, 2.0, 1.5, 1.2, 1.0, 1.1, 2.0, 5.0])
    0.001
    """
    lrs, values = _curve(learning_rates, losses, "valley")
    n = values.size
    # lds[i]: length of the longest strictly decreasing subsequence ending at i.
    lds = np.ones(n, dtype="int64")
    for i in range(1, n):
        higher = values[:i] > values[i]
        if higher.any():
            lds[i] = lds[:i][higher].max() + 1
    end = int(np.argmax(lds))  # the first index reaching the longest valley
    start = end - int(lds[end]) + 1
    length = end - start
    index = start + int(length / 3) + int(length / 6)
    return float(lrs[index])


def minimum(learning_rates, losses):
    """Suggests one tenth of the learning rate at which the loss is lowest.

    The classic rule of thumb (fastai's `minimum`): the loss minimum is already
    at the edge of stability, so train ten times below it. Non-finite losses are
    ignored. Pure: the inputs are not modified.

    Args:
        learning_rates: 1-D sequence of positive floats, increasing.
        losses: 1-D sequence of floats, the (smoothed) loss at each learning rate.

    Returns:
        The suggested learning rate, a Python float.

    Raises:
        ValueError: if the sequences differ in length, a learning rate is not
            positive, or fewer than 2 losses are finite.

    Example:

    >>> from keras_recipes.lr_finder import minimum
    >>> minimum([1e-4, 1e-3, 1e-2, 1e-1], [2.0, 1.5, 1.0, 4.0])
    0.001
    """
    lrs, values = _curve(learning_rates, losses, "minimum")
    return float(lrs[int(np.argmin(values))] / 10.0)


def steepest(learning_rates, losses):
    """Suggests the learning rate at which the loss falls fastest.

    The steepest negative slope of the loss against `log(learning_rate)`,
    measured with finite differences between neighbouring points; the
    suggestion is the left point of the steepest segment (fastai's `steep`).
    Non-finite losses are ignored. Pure: the inputs are not modified.

    Args:
        learning_rates: 1-D sequence of positive floats, increasing.
        losses: 1-D sequence of floats, the (smoothed) loss at each learning rate.

    Returns:
        The suggested learning rate, a Python float.

    Raises:
        ValueError: if the sequences differ in length, a learning rate is not
            positive, or fewer than 2 losses are finite.

    Example:

    >>> from keras_recipes.lr_finder import steepest
    >>> steepest([1e-4, 1e-3, 1e-2, 1e-1], [2.0, 1.9, 1.0, 0.9])
    0.001
    """
    lrs, values = _curve(learning_rates, losses, "steepest")
    log_lrs = np.log(lrs)
    step = np.diff(log_lrs)
    step[step == 0] = np.finfo("float64").tiny
    slopes = np.diff(values) / step
    return float(lrs[int(np.argmin(slopes))])


_SUGGESTION_FUNCTIONS = {"valley": valley, "minimum": minimum, "steepest": steepest}


def smooth_losses(losses, smoothing=0.98):
    """Exponential moving average of a loss curve with bias correction.

    `average_i = smoothing * average_{i-1} + (1 - smoothing) * loss_i` starting
    from 0, divided by `1 - smoothing ** (i + 1)` (the debiasing of Adam's
    moments), so the first values are not pulled towards zero. Once a loss is
    NaN the rest of the curve is NaN.

    Args:
        losses: 1-D sequence of floats.
        smoothing: float in [0, 1), the weight of the past. `0` returns the
            losses unchanged. Defaults to `0.98`.

    Returns:
        A float64 numpy array of the same length.

    Example:

    >>> from keras_recipes.lr_finder import smooth_losses
    >>> smooth_losses([1.0, 1.0, 1.0], smoothing=0.9).tolist()
    [1.0, 1.0, 1.0]
    """
    smoothing = v.check_number(
        "smoothing", smoothing, low=0, high=1, high_inclusive=False
    )
    values = np.asarray(losses, dtype="float64").reshape(-1)
    out = np.empty_like(values)
    average = 0.0
    for i, loss in enumerate(values):
        average = smoothing * average + (1.0 - smoothing) * loss
        out[i] = average / (1.0 - smoothing ** (i + 1))
    return out


def _trim(n):
    """fastai's trimming before suggesting: skip the first 10% and the last 5 points."""
    start, end = n // 10, n - 5
    if end - start < 3:
        start, end = 0, n
    return start, end


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


class LRFinderResult:
    """What `find_learning_rate` recorded, with its suggestions and a plot.

    Attributes:
        learning_rates: float64 numpy array, the learning rate of each step.
        losses: float64 numpy array, the raw training loss of each step.
        smoothed_losses: float64 numpy array, the debiased exponential moving
            average of `losses` that the suggestions and the early stop use.
        valley: float or None, see `keras_recipes.lr_finder.valley`.
        minimum: float or None, see `keras_recipes.lr_finder.minimum`.
        steepest: float or None, see `keras_recipes.lr_finder.steepest`.
        method: str, the rule behind `suggestion`.
        suggestion: float or None, the suggested learning rate.
        stopped_early: bool, whether the run stopped because the smoothed loss
            diverged (exceeded `divergence_factor` times its best, or NaN).
        elapsed: float, wall time of the run in seconds.

    The suggestions are computed on the smoothed curve without its first 10%
    and last 5 points (as fastai does), so that neither the noisy start nor the
    divergence at the end decides them. They are `None` only when fewer than
    2 finite points remain.

    Example:

    >>> import numpy as np
    >>> from keras_recipes.lr_finder import LRFinderResult
    >>> lrs = np.logspace(-5, 0, 30)
    >>> result = LRFinderResult(lrs, (np.log10(lrs) + 2.5) ** 2 + 1)
    >>> result.method, round(result.minimum, 6) > 0
    ('valley', True)
    """

    def __init__(
        self,
        learning_rates,
        losses,
        smoothed_losses=None,
        *,
        method="valley",
        stopped_early=False,
        elapsed=0.0,
    ):
        method = v.check_choice("method", method, SUGGESTION_METHODS)
        self.learning_rates = np.asarray(learning_rates, dtype="float64").reshape(-1)
        self.losses = np.asarray(losses, dtype="float64").reshape(-1)
        if self.learning_rates.shape != self.losses.shape:
            v.fail(
                "losses",
                f"<{self.losses.size} values>",
                f"as long as `learning_rates` ({self.learning_rates.size} values)",
            )
        if smoothed_losses is None:
            smoothed_losses = self.losses
        self.smoothed_losses = np.asarray(smoothed_losses, dtype="float64").reshape(-1)
        if self.smoothed_losses.shape != self.losses.shape:
            v.fail(
                "smoothed_losses",
                f"<{self.smoothed_losses.size} values>",
                f"as long as `losses` ({self.losses.size} values)",
            )
        self.method = method
        self.stopped_early = bool(stopped_early)
        self.elapsed = float(elapsed)
        start, end = _trim(self.learning_rates.size)
        lrs = self.learning_rates[start:end]
        curve = self.smoothed_losses[start:end]
        if np.isfinite(curve).sum() < 2:  # fall back on the whole curve
            lrs, curve = self.learning_rates, self.smoothed_losses
        for name, fn in _SUGGESTION_FUNCTIONS.items():
            value = fn(lrs, curve) if np.isfinite(curve).sum() >= 2 else None
            setattr(self, name, value)
        self.suggestion = getattr(self, method)

    def __repr__(self):
        suggestion = "None" if self.suggestion is None else f"{self.suggestion:.3g}"
        return (
            f"<LRFinderResult steps={self.learning_rates.size} "
            f"learning_rates=[{self._first_lr()}] suggestion={suggestion} ({self.method}) "
            f"stopped_early={self.stopped_early}>"
        )

    def _first_lr(self):
        if not self.learning_rates.size:
            return ""
        return f"{self.learning_rates[0]:.3g} .. {self.learning_rates[-1]:.3g}"

    def to_dict(self):
        """Returns the result as plain Python data (lists and floats), e.g. for JSON."""
        return {
            "learning_rates": self.learning_rates.tolist(),
            "losses": self.losses.tolist(),
            "smoothed_losses": self.smoothed_losses.tolist(),
            "suggestion": self.suggestion,
            "method": self.method,
            "valley": self.valley,
            "minimum": self.minimum,
            "steepest": self.steepest,
            "stopped_early": self.stopped_early,
            "elapsed": self.elapsed,
        }

    def plot(self, ax=None, *, show_raw=True, show_suggestions=True):
        """Plots the smoothed loss against the learning rate (log scale).

        Each named suggestion gets a vertical line of its own colour and style
        (the chosen one thicker, with a red dot on the curve); `minimum` is
        fastai's rule, a tenth of the learning rate at the loss minimum, which
        is marked too. The raw losses are drawn faintly behind the smoothed
        curve, and the y-range holds both up to the minimum.

        Args:
            ax: a matplotlib `Axes` to draw on, or `None` for a new figure.
                Defaults to `None`.
            show_raw: bool, whether to draw the raw losses too. Defaults to `True`.
            show_suggestions: bool, whether to mark the other named suggestions.
                Defaults to `True`.

        Returns:
            The matplotlib `Axes`.

        Raises:
            ImportError: if matplotlib is not installed
                (`pip install "keras-recipes[cli]"`).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError(
                "LRFinderResult.plot() needs matplotlib. Install it with "
                '`pip install "keras-recipes[cli]"` (or `pip install matplotlib`).'
            ) from error
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        lrs, raw, smoothed = self.learning_rates, self.losses, self.smoothed_losses
        if show_raw:
            ax.plot(lrs, raw, color="tab:blue", alpha=0.3, lw=1, label="loss (each batch)")
        ax.plot(lrs, smoothed, color="tab:blue", lw=2, label="smoothed loss")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("loss")
        finite = np.isfinite(smoothed)
        if finite.any():
            # From the lowest loss (raw too) to the highest before the minimum, so both
            # curves stay in view; the divergence after the minimum may leave the top.
            lowest = int(np.nanargmin(np.where(finite, smoothed, np.nan)))
            values = np.concatenate([smoothed[: lowest + 1], raw[: lowest + 1]] if show_raw
                                    else [smoothed[: lowest + 1]])
            values = values[np.isfinite(values)]
            low, high = float(values.min()), float(values.max())
            span = max(high - low, 1e-12)
            ax.set_ylim(low - 0.05 * span, high + 0.15 * span)
            if show_suggestions:
                ax.plot(lrs[lowest], smoothed[lowest], "v", color="tab:purple", ms=7,
                        label=f"smoothed loss minimum, at {lrs[lowest]:.2g}")
        styles = {"valley": ("tab:green", "-."), "minimum": ("tab:purple", ":"),
                  "steepest": ("tab:orange", "--")}
        labels = {"valley": "valley", "minimum": "minimum / 10 (fastai's rule)",
                  "steepest": "steepest descent"}
        for name in SUGGESTION_METHODS:
            value = getattr(self, name)
            chosen = name == self.method
            if value is None or not (show_suggestions or chosen):
                continue
            color, style = styles.get(name, ("grey", ":"))
            ax.axvline(value, color=color, ls=style, lw=2 if chosen else 1.2,
                       label=f"{labels.get(name, name)}: {value:.2g}"
                       + (" (the suggestion)" if chosen else ""))
        if self.suggestion is not None:
            loss_at = float(np.interp(np.log(self.suggestion), np.log(lrs), smoothed))
            ax.plot([self.suggestion], [loss_at], "o", color="tab:red", ms=8, zorder=5,
                    label=f"suggested learning rate {self.suggestion:.2g}")
        ax.legend(loc="best", fontsize="small")
        ax.set_title("Learning-rate range test")
        return ax


# ---------------------------------------------------------------------------
# State preservation (also used by keras_recipes.diagnostics)
# ---------------------------------------------------------------------------


def _check_compiled_model(model, name="model"):
    if not isinstance(model, keras.Model):
        v.fail(name, model, "a keras.Model", error=TypeError)
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        v.fail(
            name,
            model,
            "a compiled keras.Model",
            hint="Call `model.compile(optimizer=..., loss=...)` first",
        )


def _inner_optimizer(optimizer):
    """The optimizer that owns the learning rate (unwraps `LossScaleOptimizer`)."""
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def _unique(variables):
    seen, out = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            out.append(variable)
    return out


def _optimizer_variables(optimizer):
    variables = list(optimizer.variables)
    inner = _inner_optimizer(optimizer)
    if inner is not optimizer:
        variables += list(inner.variables)
    return _unique(variables)


def _to_numpy(variable):
    return np.array(variable.numpy(), copy=True)


def _build_for_training(model, batch):
    """Builds the model, its compiled loss/metrics and the optimizer as `fit` would.

    Building the optimizer up front (instead of inside the first train step)
    creates exactly the variables the first `fit` would create, with the same
    initial values, so they can be snapshotted and restored.
    """
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is not None:
        symbolic_build(data_batch=batch)
    elif not model.optimizer.built:  # pragma: no cover - older Keras
        model.optimizer.build(model.trainable_variables)


@contextlib.contextmanager
def _preserved_global_random_state():
    """Restores the backend's global random generator, however the block exits.

    On PyTorch, Keras draws the masks of unseeded dropout layers
    (`Dropout(rate)` without `seed`) from torch's global generator, so a few
    training-mode passes would shift every later mask of the user's `fit`. On
    TensorFlow and JAX all Keras randomness lives in seed-generator variables,
    which the callers restore with the other variables.
    """
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    cpu_state = torch.get_rng_state()
    cuda_states = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda_states = torch.cuda.get_rng_state_all()
    mps = getattr(torch, "mps", None)
    mps_state = None
    if mps is not None and torch.backends.mps.is_available():
        mps_state = mps.get_rng_state()
    try:
        yield
    finally:
        torch.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        if mps_state is not None:
            mps.set_rng_state(mps_state)


@contextlib.contextmanager
def _preserved_training_state(model):
    """Restores everything a few training steps can change, however the block exits.

    Restored: every model variable (weights, BatchNorm statistics, seed
    generator states), metric variables, every optimizer variable (iterations,
    slots, learning-rate variable, loss scale), the optimizer's learning rate
    or schedule object, the model's cached train function and `stop_training`,
    and on PyTorch the global random generator (see
    `_preserved_global_random_state`).
    """
    with _preserved_global_random_state():
        with _preserved_variables(model):
            yield


@contextlib.contextmanager
def _preserved_variables(model):
    optimizer = model.optimizer
    inner = _inner_optimizer(optimizer)
    variables = _unique(list(model.variables) + _optimizer_variables(optimizer))
    saved = [_to_numpy(variable) for variable in variables]
    metric_variables = list(model.metrics_variables)
    saved_metrics = [_to_numpy(variable) for variable in metric_variables]
    saved_learning_rate = inner._learning_rate
    saved_train_function = model.train_function
    saved_stop_training = model.stop_training
    try:
        yield
    finally:
        inner._learning_rate = saved_learning_rate
        for variable, value in zip(variables, saved):
            variable.assign(value)
        for metric in model.metrics:
            metric.reset_state()
        for variable, value in zip(metric_variables, saved_metrics):
            variable.assign(value)
        model.train_function = saved_train_function
        model.stop_training = saved_stop_training


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def _is_tf_dataset(x):
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")


def _is_py_dataset(x):
    return isinstance(x, keras.utils.PyDataset)


def _is_array(x):
    return hasattr(x, "__array__") or isinstance(x, (list, np.ndarray))


def _num_samples(name, data):
    leaves = keras.tree.flatten(data)
    if not leaves:
        v.fail(name, data, "a non-empty array (or structure of arrays)")
    lengths = set()
    for leaf in leaves:
        shape = np.shape(leaf)
        if not shape:
            v.fail(name, leaf, "arrays with a batch dimension, not a scalar")
        lengths.add(int(shape[0]))
    if len(lengths) > 1:
        v.fail(name, f"<arrays of lengths {sorted(lengths)}>", "arrays of one common length")
    return lengths.pop()


def _array_batches(x, y, sample_weight, batch_size, shuffle, seed):
    """Yields (x, y, sample_weight) batches forever, reshuffled at every pass."""
    x = keras.tree.map_structure(np.asarray, x)
    y = None if y is None else keras.tree.map_structure(np.asarray, y)
    sample_weight = None if sample_weight is None else np.asarray(sample_weight)
    n = _num_samples("x", x)
    if n == 0:
        v.fail("x", "<0 samples>", "at least one sample")
    if y is not None and _num_samples("y", y) != n:
        v.fail("y", f"<{_num_samples('y', y)} samples>", f"as many samples as `x` ({n})")
    if sample_weight is not None and len(sample_weight) != n:
        v.fail(
            "sample_weight",
            f"<{len(sample_weight)} samples>",
            f"as many samples as `x` ({n})",
        )
    size = min(batch_size, n)
    num_batches = n // size  # full batches only: one shape, one trace
    rng = np.random.default_rng(seed)

    def take(data, index):
        if data is None:
            return None
        return keras.tree.map_structure(lambda a: a[index], data)

    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for b in range(num_batches):
            index = order[b * size : (b + 1) * size]
            yield take(x, index), take(y, index), take(sample_weight, index)


def _dataset_batches(dataset):
    """Yields (x, y, sample_weight) batches of a re-iterable dataset, cycling.

    On JAX and PyTorch the TensorFlow tensors are converted to numpy arrays,
    as Keras's own data adapter does for those backends.
    """
    convert = keras.backend.backend() != "tensorflow"
    while True:
        produced = False
        for element in dataset:
            produced = True
            if convert:
                element = keras.tree.map_structure(_tf_to_numpy, element)
            yield keras.utils.unpack_x_y_sample_weight(_as_tuple(element))
        if not produced:
            v.fail("x", dataset, "a dataset that yields at least one batch")


def _tf_to_numpy(value):
    if value is None or not type(value).__module__.startswith("tensorflow"):
        return value
    return value.numpy()


def _py_dataset_batches(dataset):
    while True:
        num_batches = dataset.num_batches
        if num_batches is None:  # infinite PyDataset
            index = 0
            while True:
                yield keras.utils.unpack_x_y_sample_weight(_as_tuple(dataset[index]))
                index += 1
        if num_batches == 0:
            v.fail("x", dataset, "a dataset that yields at least one batch")
        for index in range(num_batches):
            yield keras.utils.unpack_x_y_sample_weight(_as_tuple(dataset[index]))
        dataset.on_epoch_end()


def _as_tuple(element):
    return tuple(element) if isinstance(element, list) else element


def _batches(x, y, sample_weight, batch_size, shuffle, seed):
    """One iterator of (x, y, sample_weight) batches for arrays or datasets."""
    if _is_tf_dataset(x) or _is_py_dataset(x):
        for name, value in (("y", y), ("sample_weight", sample_weight)):
            if value is not None:
                v.fail(
                    name,
                    "<array>",
                    "None when `x` is a dataset",
                    hint="(the dataset yields its own targets and weights)",
                )
        if _is_tf_dataset(x):
            return _dataset_batches(x)
        return _py_dataset_batches(x)
    if x is None or isinstance(x, (str, bytes)) or not all(
        _is_array(leaf) for leaf in keras.tree.flatten(x)
    ):
        v.fail(
            "x",
            x,
            "a numpy array (or a list/dict of arrays), a tf.data.Dataset or a "
            "keras.utils.PyDataset",
            error=TypeError,
        )
    return _array_batches(x, y, sample_weight, batch_size, shuffle, seed)


# ---------------------------------------------------------------------------
# The range test
# ---------------------------------------------------------------------------


class _ExponentialRamp(keras.optimizers.schedules.LearningRateSchedule):
    """`min * (max / min) ** ((step - start_step) / (num_steps - 1))`; used only during the run."""

    def __init__(self, min_learning_rate, max_learning_rate, num_steps, start_step):
        self.min_learning_rate = float(min_learning_rate)
        self.max_learning_rate = float(max_learning_rate)
        self.num_steps = int(num_steps)
        self.start_step = int(start_step)

    def __call__(self, step):
        progress = (ops.cast(step, "float32") - float(self.start_step)) / float(
            self.num_steps - 1
        )
        log_ratio = math.log(self.max_learning_rate / self.min_learning_rate)
        return self.min_learning_rate * ops.exp(log_ratio * progress)

    def get_config(self):
        return {
            "min_learning_rate": self.min_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "num_steps": self.num_steps,
            "start_step": self.start_step,
        }


def ramp_learning_rates(min_learning_rate, max_learning_rate, num_steps):
    """The learning rate of each step of the range test, as a float64 numpy array.

    `learning_rates[i] = min_learning_rate * (max_learning_rate / min_learning_rate)
    ** (i / (num_steps - 1))`: geometric, from `min_learning_rate` to
    `max_learning_rate` inclusive.

    Example:

    >>> from keras_recipes.lr_finder import ramp_learning_rates
    >>> ramp_learning_rates(1e-3, 1e-1, 3).round(6).tolist()
    [0.001, 0.01, 0.1]
    """
    steps = np.arange(num_steps, dtype="float64")
    ratio = max_learning_rate / min_learning_rate
    return min_learning_rate * ratio ** (steps / max(num_steps - 1, 1))


def _loss_value(logs):
    value = logs.get("loss") if isinstance(logs, dict) else None
    if value is None:
        raise ValueError(
            "The model's training step returned no `loss` (got keys "
            f"{sorted(logs) if isinstance(logs, dict) else logs!r}); "
            "find_learning_rate needs a model compiled with a loss."
        )
    return float(np.asarray(value).reshape(-1)[0])


def find_learning_rate(
    model,
    x,
    y=None,
    min_learning_rate=1e-7,
    max_learning_rate=10.0,
    num_steps=100,
    batch_size=32,
    *,
    sample_weight=None,
    smoothing=0.98,
    divergence_factor=4.0,
    method="valley",
    shuffle=True,
    seed=None,
    verbose=0,
):
    """Runs a learning-rate range test and suggests a learning rate.

    Trains `model` for up to `num_steps` batches while the learning rate grows
    exponentially from `min_learning_rate` to `max_learning_rate`, records the
    training loss of every batch, smooths it (debiased exponential moving
    average) and stops early once the smoothed loss exceeds
    `divergence_factor` times its best value or is NaN/Inf (Smith, 2017; the
    procedure of fastai's `lr_find`). The suggestion is computed from the
    smoothed curve by `method`.

    Works with any compiled Keras model and optimizer, including one whose
    learning rate is a `LearningRateSchedule`: the ramp replaces the learning
    rate inside the compiled train step for the duration of the test (Keras
    would refuse to set the learning rate of such an optimizer, and a Python
    write between batches has no effect in compiled training on some backends).

    Afterwards the model is exactly as before: weights, BatchNorm statistics,
    dropout seed states, metric state, and the optimizer's iterations, slot
    variables and learning rate (or schedule) are restored, also when the run
    raises or is interrupted (`KeyboardInterrupt`). An optimizer that was not
    built yet is built first, exactly as the first `fit` would build it, so
    training after the test is identical to training without it. On the
    PyTorch backend torch's global random generator, from which unseeded
    dropout layers draw their masks, is restored too.

    Backends: TensorFlow, JAX and PyTorch. One PyTorch caveat: Keras's first
    `fit` of a model whose loss and metrics are not built yet draws once from
    torch's global generator; once the finder has built them, that draw no
    longer happens, so the masks of *unseeded* dropout layers (not the weights
    or the optimizer state) in the following `fit` differ from a run without
    the finder. Give dropout layers a `seed` for bit-identical runs.

    Args:
        model: a compiled `keras.Model`.
        x: input data: a numpy array (or a list/dict of arrays), a
            `tf.data.Dataset` or a `keras.utils.PyDataset` yielding
            `(x, y)` or `(x, y, sample_weight)` batches. Datasets are
            iterated again from the start if they run out before `num_steps`.
        y: target array, or `None` when `x` is a dataset (or the model needs
            no targets). Defaults to `None`.
        min_learning_rate: float > 0, the first learning rate. Defaults to `1e-7`.
        max_learning_rate: float > `min_learning_rate`, the last learning rate.
            Defaults to `10.0`.
        num_steps: int >= 5, the number of batches (steps) in the ramp.
            Defaults to `100`.
        batch_size: int, batch size for array inputs (ignored for datasets).
            Only full batches are used. Defaults to `32`.
        sample_weight: optional array of per-sample weights for array inputs.
            Defaults to `None`.
        smoothing: float in [0, 1), the weight of the past in the moving
            average of the loss. Defaults to `0.98`.
        divergence_factor: float > 1 or `None`; stop once the smoothed loss
            exceeds this multiple of its best value (checked while the best
            value is positive). `None` runs all `num_steps` unless the loss is
            NaN/Inf. Defaults to `4.0`.
        method: str, the rule behind `result.suggestion`: `"valley"`,
            `"minimum"` or `"steepest"` (all three are computed). Defaults to
            `"valley"`.
        shuffle: bool, whether to shuffle array inputs. Defaults to `True`.
        seed: int or `None`, seed of the shuffling (a private generator: the
            global numpy state is not touched). Defaults to `None`.
        verbose: int, 0 (silent) or 1 (one summary line). Defaults to `0`.

    Returns:
        An `LRFinderResult`; `result.suggestion` is a Python float.

    Raises:
        TypeError: if `model` is not a `keras.Model` or `x` is not array-like
            or a dataset.
        ValueError: if the model is not compiled, an argument is out of range,
            the data are empty or of mismatched lengths, or the loss was not
            finite long enough to suggest anything.

    Example:

    >>> import numpy as np, keras, keras_recipes
    >>> x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    >>> y = x @ np.ones((8, 1), "float32")
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> result = keras_recipes.find_learning_rate(model, x, y, num_steps=50, seed=0)
    >>> isinstance(result.suggestion, float)
    True
    """
    _check_compiled_model(model)
    min_learning_rate = v.check_number(
        "min_learning_rate", min_learning_rate, low=0, low_inclusive=False
    )
    max_learning_rate = v.check_number(
        "max_learning_rate", max_learning_rate, low=0, low_inclusive=False
    )
    if max_learning_rate <= min_learning_rate:
        v.fail(
            "max_learning_rate",
            max_learning_rate,
            f"greater than min_learning_rate={min_learning_rate}",
        )
    num_steps = v.check_int("num_steps", num_steps, min_value=5)
    batch_size = v.check_int("batch_size", batch_size, min_value=1)
    smoothing = v.check_number("smoothing", smoothing, low=0, high=1, high_inclusive=False)
    if divergence_factor is not None:
        divergence_factor = v.check_number(
            "divergence_factor", divergence_factor, low=1, low_inclusive=False, allow_none=True
        )
    method = v.check_choice("method", method, SUGGESTION_METHODS)
    v.check_bool("shuffle", shuffle)
    if (seed is not None and not isinstance(seed, numbers.Integral)) or isinstance(seed, bool):
        v.fail("seed", seed, "an integer or None", error=TypeError)
    verbose = v.check_int("verbose", verbose, min_value=0, max_value=2)

    batches = _batches(x, y, sample_weight, batch_size, shuffle, seed)
    first = next(batches)
    learning_rates = ramp_learning_rates(min_learning_rate, max_learning_rate, num_steps)
    losses, smoothed = [], []
    stopped_early = False
    started = time.perf_counter()
    _build_for_training(model, first)
    with _preserved_training_state(model):
        inner = _inner_optimizer(model.optimizer)
        start_step = int(inner._iterations.numpy())
        inner._learning_rate = _ExponentialRamp(
            min_learning_rate, max_learning_rate, num_steps, start_step
        )
        model.make_train_function(force=True)
        average, best = 0.0, math.inf
        batch = first
        for step in range(num_steps):
            if step:
                batch = next(batches)
            bx, by, bsw = batch
            logs = model.train_on_batch(bx, by, sample_weight=bsw, return_dict=True)
            loss = _loss_value(logs)
            average = smoothing * average + (1.0 - smoothing) * loss
            value = average / (1.0 - smoothing ** (step + 1))
            losses.append(loss)
            smoothed.append(value)
            if not math.isfinite(value):
                stopped_early = True
                break
            best = min(best, value)
            if divergence_factor is not None and best > 0 and value > divergence_factor * best:
                stopped_early = True
                break
    elapsed = time.perf_counter() - started
    result = LRFinderResult(
        learning_rates[: len(losses)],
        losses,
        smoothed,
        method=method,
        stopped_early=stopped_early,
        elapsed=elapsed,
    )
    if result.suggestion is None:
        raise ValueError(
            "The learning-rate range test recorded fewer than 2 finite losses "
            f"(losses: {losses[:5]}), so it cannot suggest a learning rate. "
            f"Lower `min_learning_rate` (received: min_learning_rate={min_learning_rate}) "
            "or check the data and the loss for NaN/Inf. The model was restored."
        )
    if verbose:
        print(
            f"find_learning_rate: {len(losses)} steps in {elapsed:.1f}s "
            f"({'stopped early, loss diverged' if stopped_early else 'full ramp'}); "
            f"suggestion ({method}): {result.suggestion:.3g} "
            f"[valley {result.valley:.3g}, minimum {result.minimum:.3g}, "
            f"steepest {result.steepest:.3g}]"
        )
    return result
