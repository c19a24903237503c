"""Plots of a training run: learning curves and the schedules actually applied.

matplotlib is an optional dependency (`pip install "keras-recipes[cli]"`). Each
function draws on the given Axes, or on a new pyplot figure when `ax` is None
(so it shows in a notebook), and returns the Axes.
"""

from __future__ import annotations

import numpy as np

from keras_recipes import _keras_internals as internals
from keras_recipes import _validation
from keras_recipes.optimizers.scheduled import raw_hyperparameter

__all__ = ["applied_schedule", "plot_learning_curves", "plot_schedule"]

def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError('Plots need matplotlib: pip install "keras-recipes[cli]"') from error
    return plt.subplots(figsize=(6, 4), layout="constrained")[1]


def _history_dict(history):
    history = getattr(history, "history", history)
    if not isinstance(history, dict):
        raise TypeError("Argument `history` must be a keras History or a dict of per-epoch "
                        f"lists. Received: history={history!r}")
    return history


def plot_learning_curves(history, metric="loss", ax=None, kept_epoch=None):
    """Plots a metric per epoch for training and validation.

    Args:
        history: the `History` returned by `fit`, or its `.history` dict.
        metric: str, the metric to plot (`"loss"`, `"accuracy"`, ...).
            Defaults to `"loss"`.
        ax: matplotlib Axes or None. Defaults to `None` (a new figure).
        kept_epoch: int or None, an epoch (counted from 1) to mark with a
            dotted line: the one whose weights the model kept, e.g. the epoch
            early stopping restored. Defaults to `None` (none marked).

    Returns:
        The matplotlib Axes.

    Raises:
        ValueError: if `metric` is not in the history.

    Example:

    >>> import keras_recipes.plots as plots
    >>> ax = plots.plot_learning_curves({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]},
    ...                                 kept_epoch=2)
    """
    history = _history_dict(history)
    if metric not in history:
        raise ValueError(f"Argument `metric` must be one of {sorted(history)}. "
                         f"Received: metric={metric!r}")
    _validation.check_int("kept_epoch", kept_epoch, min_value=1, max_value=len(history[metric]),
                          allow_none=True)
    ax = _axes(ax)
    epochs = np.arange(1, len(history[metric]) + 1)
    ax.plot(epochs, history[metric], label=f"train {metric}")
    if f"val_{metric}" in history:
        ax.plot(epochs, history[f"val_{metric}"], label=f"validation {metric}")
    if kept_epoch is not None:
        ax.axvline(kept_epoch, color="tab:green", linestyle=":", linewidth=1.5,
                   label=f"weights kept (epoch {kept_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def applied_schedule(optimizer, num_steps=None):
    """The learning rate and momentum the optimizer used at each step so far.

    Schedules are evaluated at steps `0 .. num_steps - 1`, exactly as the
    compiled train step evaluated them from `iterations`.

    Args:
        optimizer: a Keras optimizer.
        num_steps: int or None, how many steps; defaults to `optimizer.iterations`.

    Returns:
        A dict with numpy arrays `steps`, `learning_rate` and `momentum`
        (`momentum` is None for optimizers without one).
    """
    import keras

    optimizer = internals.inner_optimizer(optimizer)
    if num_steps is None:
        num_steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
    steps = np.arange(max(num_steps, 1))

    def evaluate(value):
        if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
            return keras.ops.convert_to_numpy(value(keras.ops.convert_to_tensor(steps)))
        return np.full(len(steps), float(keras.ops.convert_to_numpy(value)))

    momentum = None
    for name in ("beta_1", "momentum"):
        if name in getattr(optimizer, "_scheduled", ()):
            momentum = evaluate(raw_hyperparameter(optimizer, name))
            break
        if hasattr(optimizer, name):
            momentum = evaluate(getattr(optimizer, name))
            break
    return {"steps": steps, "learning_rate": evaluate(internals.learning_rate_object(optimizer)),
            "momentum": momentum}


def plot_schedule(optimizer, num_steps=None, ax=None):
    """Plots the learning rate (and momentum, on a second axis) applied per step.

    Args:
        optimizer: a Keras optimizer, e.g. `model.optimizer` after `fit`.
        num_steps: int or None; defaults to the optimizer's `iterations`.
        ax: matplotlib Axes or None. Defaults to `None` (a new figure).

    Returns:
        The matplotlib Axes of the learning rate.

    Example:

    >>> import keras_recipes
    >>> from keras_recipes.plots import plot_schedule
    >>> model = keras_recipes.build_default_dnn((8,), num_classes=3, total_steps=200)
    >>> ax = plot_schedule(model.optimizer, num_steps=200)
    """
    values = applied_schedule(optimizer, num_steps)
    ax = _axes(ax)
    ax.plot(values["steps"], values["learning_rate"], color="tab:blue")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate", color="tab:blue")
    if values["momentum"] is not None:
        twin = ax.twinx()
        twin.plot(values["steps"], values["momentum"], color="tab:orange")
        twin.set_ylabel("momentum / beta_1", color="tab:orange")
    ax.set_title("schedule applied")
    return ax
