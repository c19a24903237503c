"""The suggestion rules of the learning-rate range test, and the loss smoothing.

`valley`, `minimum` and `steepest` follow fastai's `lr_find` and are pure functions
of the smoothed curve; `smooth_losses` (and `LossSmoother`, its step-by-step form
that the range test uses to stop early) is the debiased exponential moving average
those three suggestions and the early stop read. `one_cycle`, the rule of
`learning_rate="find"` under the 1cycle, reads the raw losses instead, averaged
without lag (`lag_free_losses`).
"""

from __future__ import annotations

import functools

import numpy as np

from keras_recipes import _validation as v
from keras_recipes._docstrings import fill_docstring

__all__ = [
    "SUGGESTION_METHODS",
    "LossSmoother",
    "lag_free_losses",
    "minimum",
    "one_cycle",
    "smooth_losses",
    "steepest",
    "valley",
]

SUGGESTION_METHODS = ("valley", "minimum", "steepest", "one_cycle")

# `one_cycle`: the half-width of the centred average, in decades of learning rate, and
# the factor below the averaged minimum (benchmarks/bench_lr_finder.py measured both).
_LAG_FREE_DECADES = 0.3
_ONE_CYCLE_DIVISOR = 5.0


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
    v.check_same_length("losses", values, "learning_rates", lrs)
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


# The Args, Returns and Raises of every rule.
_RULE_ARGUMENTS = """
    Args:
        learning_rates: 1-D sequence of positive floats, increasing.
        losses: 1-D sequence of floats, the (smoothed) loss at each learning rate.

    Returns:
        The suggested learning rate, a Python float.

    Raises:
        ValueError: if the sequences differ in length, a learning rate is not
            positive, or fewer than 2 losses are finite.
"""


def _suggestion_rule(suggest):
    """A suggestion rule made from `suggest(learning_rates, losses)`, which reads the
    curve's finite points (float64 arrays, checked) and returns the learning rate: the
    rule checks the curve first (its messages name the rule), returns a Python float,
    and its docstring gets the rules' shared Args, Returns and Raises."""

    @functools.wraps(suggest)
    def rule(learning_rates, losses):
        return float(suggest(*_curve(learning_rates, losses, suggest.__name__)))

    return fill_docstring(rule_arguments=_RULE_ARGUMENTS)(rule)


@_suggestion_rule
def valley(learning_rates, losses):
    """Suggests the learning rate in the middle of the longest valley of the loss curve.

    The "valley" is the longest strictly decreasing subsequence of the loss
    (read in order of increasing learning rate); the suggestion is the point
    about halfway through it, as in fastai's `valley` rule (the default of
    `lr_find` since fastai 2.4). It is robust to noise at both ends of the curve
    and lands about one order of magnitude below the minimum. Non-finite losses
    are ignored. Pure: the inputs are not modified.

    {{rule_arguments}}

    Example:

    >>> import numpy as np
    >>> from keras_recipes.lr_finder import valley
    >>> lrs = np.logspace(-5, 0, 11)
    >>> valley(lrs, [3, 3, 2.9, 2.5, 2.0, 1.5, 1.2, 1.0, 1.1, 2.0, 5.0])
    0.001
    """
    n = losses.size
    # lds[i]: length of the longest strictly decreasing subsequence ending at i.
    lds = np.ones(n, dtype="int64")
    for i in range(1, n):
        higher = losses[:i] > losses[i]
        if higher.any():
            lds[i] = lds[:i][higher].max() + 1
    end = int(np.argmax(lds))  # the first index reaching the longest valley
    start = end - int(lds[end]) + 1
    length = end - start
    index = start + int(length / 3) + int(length / 6)
    return learning_rates[index]


@_suggestion_rule
def minimum(learning_rates, losses):
    """Suggests one tenth of the learning rate at which the loss is lowest.

    The classic rule of thumb (fastai's `minimum`): the loss minimum is already
    at the edge of stability, so train ten times below it. Non-finite losses are
    ignored. Pure: the inputs are not modified.

    {{rule_arguments}}

    Example:

    >>> from keras_recipes.lr_finder import minimum
    >>> minimum([1e-4, 1e-3, 1e-2, 1e-1], [2.0, 1.5, 1.0, 4.0])
    0.001
    """
    return learning_rates[int(np.argmin(losses))] / 10.0


@_suggestion_rule
def steepest(learning_rates, losses):
    """Suggests the learning rate at which the loss falls fastest.

    The steepest negative slope of the loss against `log(learning_rate)`,
    measured with finite differences between neighbouring points; the
    suggestion is the left point of the steepest segment (fastai's `steep`).
    Non-finite losses are ignored. Pure: the inputs are not modified.

    {{rule_arguments}}

    Example:

    >>> from keras_recipes.lr_finder import steepest
    >>> steepest([1e-4, 1e-3, 1e-2, 1e-1], [2.0, 1.9, 1.0, 0.9])
    0.001
    """
    step = np.diff(np.log(learning_rates))
    step[step == 0] = np.finfo("float64").tiny
    slopes = np.diff(losses) / step
    return learning_rates[int(np.argmin(slopes))]


def lag_free_losses(learning_rates, losses, decades=_LAG_FREE_DECADES):
    """The losses averaged over a centred window of learning rates: smoothing without lag.

    Each point becomes the mean of the losses whose learning rate lies within
    `decades` decades of its own (a window of a fixed number of steps, read from
    the median spacing of `log10(learning_rates)`; shorter at the ends of the
    curve). Unlike the exponential moving average of `smooth_losses`, which
    describes the loss of earlier steps -- on the default ramp (1e-7 .. 10 in 100
    steps, smoothing 0.98) its minimum lies 0.2 to 1.2 decades past the raw
    loss's, measured on three models -- the centred average puts each feature of
    the curve at its own learning rate. Only finite losses are kept.

    Args:
        learning_rates: 1-D sequence of positive floats, increasing.
        losses: 1-D sequence of floats, the raw loss of each step.
        decades: float >= 0, the half-width of the window. `0` returns the
            losses unchanged. Defaults to `0.3`.

    Returns:
        A tuple `(learning_rates, averaged)` of float64 numpy arrays: the
        learning rates of the finite losses, and the averaged losses.

    Raises:
        ValueError: if the sequences differ in length, a learning rate is not
            positive, fewer than 2 losses are finite, or `decades` < 0.

    Example:

    >>> from keras_recipes.lr_finder import lag_free_losses
    >>> lrs, averaged = lag_free_losses([1e-3, 1e-2, 1e-1, 1.0], [4.0, 2.0, 0.0, 6.0],
    ...                                 decades=1.0)
    >>> averaged.tolist()
    [3.0, 2.0, 2.6666666666666665, 3.0]
    """
    decades = v.check_number("decades", decades, low=0)
    lrs, values = _curve(learning_rates, losses, "lag_free_losses")
    spacing = float(np.median(np.abs(np.diff(np.log10(lrs)))))
    half = int(round(decades / spacing)) if spacing > 0 else 0
    if half == 0:
        return lrs, values
    index = np.arange(values.size)
    low = np.maximum(index - half, 0)
    high = np.minimum(index + half + 1, values.size)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    return lrs, (cumulative[high] - cumulative[low]) / (high - low)


def one_cycle(learning_rates, losses):
    """Suggests the peak of a 1cycle: a fifth of the rate of the lowest lag-free loss.

    The rule `learning_rate="find"` trains at when the recipe's schedule is the
    1cycle. It reads the *raw* losses (not the exponential moving average the
    other rules read), averages them over +-0.3 decades of learning rate with
    `lag_free_losses`, and returns a fifth of the learning rate at the lowest
    average. Smith's 1cycle peaks close to the largest rate at which the loss
    still falls; the factor 5 keeps it below the minimum, where the range test
    starts to diverge, since a peak too high costs far more than one too low.

    Measured (`benchmarks/bench_lr_finder.py`, digits, an MLP, a CNN and a GRU,
    3 seeds, against a grid of peaks 1e-3 .. 0.3): `valley` suggested 3 to 6
    times below the grid's best peak on all three models (the moving average's
    lag stretches its valley far to the left of the raw loss's fall), costing
    0.6 to 1.2 points of test accuracy; this rule lands within a factor of 2
    of the best peak. Non-finite losses are ignored. Pure: the inputs are not
    modified.

    Args:
        learning_rates: 1-D sequence of positive floats, increasing.
        losses: 1-D sequence of floats, the raw loss of each step.

    Returns:
        The suggested learning rate, a Python float.

    Raises:
        ValueError: if the sequences differ in length, a learning rate is not
            positive, or fewer than 2 losses are finite.

    Example:

    >>> import numpy as np
    >>> from keras_recipes.lr_finder import one_cycle
    >>> lrs = np.logspace(-4, 0, 9)
    >>> round(one_cycle(lrs, [2.0, 2.0, 1.9, 1.5, 1.0, 0.6, 0.5, 0.9, 3.0]), 6)
    0.02
    """
    lrs, averaged = lag_free_losses(learning_rates, losses)
    return float(lrs[int(np.argmin(averaged))] / _ONE_CYCLE_DIVISOR)


class LossSmoother:
    """The debiased exponential moving average of a loss, one step at a time.

    `average_i = smoothing * average_{i-1} + (1 - smoothing) * loss_i` starting
    from 0; `update` returns `average_i / (1 - smoothing ** (i + 1))` (the
    debiasing of Adam's moments), so the first values are not pulled towards
    zero. Once a loss is NaN every later value is NaN.

    Args:
        smoothing: float in [0, 1), the weight of the past. `0` returns each
            loss unchanged. Defaults to `0.98`.

    Example:

    >>> from keras_recipes.lr_finder import LossSmoother
    >>> smoother = LossSmoother(0.5)
    >>> smoother.update(2.0), smoother.update(1.0)
    (2.0, 1.3333333333333333)
    """

    def __init__(self, smoothing=0.98):
        self.smoothing = v.check_number(
            "smoothing", smoothing, low=0, high=1, high_inclusive=False
        )
        self._average = 0.0
        self._steps = 0

    def update(self, loss):
        """Adds the next loss; returns the smoothed value (a Python float)."""
        self._steps += 1
        self._average = self.smoothing * self._average + (1.0 - self.smoothing) * float(loss)
        return self._average / (1.0 - self.smoothing**self._steps)


def smooth_losses(losses, smoothing=0.98):
    """Exponential moving average of a loss curve with bias correction.

    `average_i = smoothing * average_{i-1} + (1 - smoothing) * loss_i` starting
    from 0, divided by `1 - smoothing ** (i + 1)` (the debiasing of Adam's
    moments), so the first values are not pulled towards zero. Once a loss is
    NaN the rest of the curve is NaN. The curve `find_learning_rate` records
    step by step with a `LossSmoother`.

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
    smoother = LossSmoother(smoothing)
    values = np.asarray(losses, dtype="float64").reshape(-1)
    return np.array([smoother.update(loss) for loss in values], dtype="float64")

