"""`LRFinderResult`: the curve a range test recorded, its suggestions and its plot."""

from __future__ import annotations

import numpy as np

from keras_recipes import _validation as v
from keras_recipes.lr_finder.suggestions import SUGGESTION_METHODS, minimum, steepest, valley

__all__ = ["LRFinderResult"]

_SUGGESTION_FUNCTIONS = {"valley": valley, "minimum": minimum, "steepest": steepest}


def _trim(n):
    """fastai's trimming before suggesting: skip the first 10% and the last 5 points."""
    start, end = n // 10, n - 5
    if end - start < 3:
        start, end = 0, n
    return start, end


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

        The suggestion is marked with a red dot and a dotted vertical line; the
        other named suggestions get grey lines, and the raw losses are drawn
        faintly behind the smoothed curve.

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
            _, ax = plt.subplots(figsize=(6, 4))
        lrs = self.learning_rates
        if show_raw:
            ax.plot(lrs, self.losses, color="tab:blue", alpha=0.25, lw=1, label="loss")
        ax.plot(lrs, self.smoothed_losses, color="tab:blue", lw=2, label="smoothed loss")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        finite = self.smoothed_losses[np.isfinite(self.smoothed_losses)]
        if finite.size:
            low, high = float(finite.min()), float(finite[: max(1, finite.size // 10) + 1].max())
            span = max(high - low, 1e-12)
            ax.set_ylim(low - 0.1 * span, max(high, float(finite[0])) + 0.5 * span)
        if show_suggestions:
            for name in SUGGESTION_METHODS:
                value = getattr(self, name)
                if name != self.method and value is not None:
                    ax.axvline(value, color="grey", ls=":", lw=1, label=f"{name} {value:.2g}")
        if self.suggestion is not None:
            loss_at = float(np.interp(np.log(self.suggestion), np.log(lrs), self.smoothed_losses))
            ax.axvline(self.suggestion, color="tab:red", ls="--", lw=1)
            ax.plot(
                [self.suggestion],
                [loss_at],
                "o",
                color="tab:red",
                label=f"suggestion ({self.method}) {self.suggestion:.2g}",
            )
        ax.legend(loc="best", fontsize="small")
        ax.set_title("Learning-rate range test")
        return ax
