"""`LRFinderResult`: the curve a range test recorded, its suggestions and its plot."""

from __future__ import annotations

import numpy as np

from keras_recipes import _validation as v
from keras_recipes.lr_finder.suggestions import (
    SUGGESTION_METHODS,
    minimum,
    one_cycle,
    steepest,
    valley,
)

__all__ = ["LRFinderResult"]

_SUGGESTION_FUNCTIONS = {"valley": valley, "minimum": minimum, "steepest": steepest,
                         "one_cycle": one_cycle}
_READS_RAW_LOSSES = ("one_cycle",)  # it averages them itself, without lag


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
        one_cycle: float or None, see `keras_recipes.lr_finder.one_cycle` (the
            rule of `learning_rate="find"` under the 1cycle).
        method: str, the rule behind `suggestion`.
        suggestion: float or None, the suggested learning rate.
        stopped_early: bool, whether the run stopped because the smoothed loss
            diverged (exceeded `divergence_factor` times its best, or NaN).
        elapsed: float, wall time of the run in seconds.

    The suggestions are computed on the smoothed curve (`one_cycle`: on the raw
    losses, which it averages without lag) without its first 10% and last 5
    points (as fastai does), so that neither the noisy start nor the divergence
    at the end decides them. They are `None` only when fewer than 2 finite
    points remain.

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
        v.check_same_length("losses", self.losses, "learning_rates", self.learning_rates)
        if smoothed_losses is None:
            smoothed_losses = self.losses
        self.smoothed_losses = np.asarray(smoothed_losses, dtype="float64").reshape(-1)
        v.check_same_length("smoothed_losses", self.smoothed_losses, "losses", self.losses)
        self.method = method
        self.stopped_early = bool(stopped_early)
        self.elapsed = float(elapsed)
        start, end = _trim(self.learning_rates.size)
        kept = slice(start, end)
        if np.isfinite(self.smoothed_losses[kept]).sum() < 2:  # fall back on the whole curve
            kept = slice(None)
        lrs = self.learning_rates[kept]
        for name, fn in _SUGGESTION_FUNCTIONS.items():
            curve = (self.losses if name in _READS_RAW_LOSSES else self.smoothed_losses)[kept]
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
            "one_cycle": self.one_cycle,
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
                  "steepest": ("tab:orange", "--"), "one_cycle": ("tab:brown", "-")}
        labels = {"valley": "valley", "minimum": "minimum / 10 (fastai's rule)",
                  "steepest": "steepest descent",
                  "one_cycle": "1cycle peak (lag-free minimum / 5)"}
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
