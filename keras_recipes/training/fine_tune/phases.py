"""One phase of `fine_tune`: recompile with the phase's optimizer, then one `fit`; and
the one `History` of all phases."""

from __future__ import annotations

import dataclasses
import math

import keras

from keras_recipes import _keras_internals as ki
from keras_recipes.recipe import RecipeState
from keras_recipes.training.fine_tune.phase_optimizers import recompile
from keras_recipes.training.recipe_model import RecipeTraining

__all__ = ["PhaseRun", "combined_history", "fit_phase", "kept_epoch", "stopped_on_nan"]


@dataclasses.dataclass(frozen=True)
class PhaseRun:
    """What every phase of one `fine_tune` call fits with.

    Attributes:
        fit_data: dict, `fit`'s data arguments (`x`, `y`, ..., `batch_size`).
        validation_data: as `fit`'s.
        steps_per_epoch: int or None.
        callbacks: list of the user's callbacks.
        verbose: as `fit`'s.
        backup: a `resume.PhaseBackup` or None.
    """

    fit_data: dict
    validation_data: object
    steps_per_epoch: int | None
    callbacks: list
    verbose: object
    backup: object


def fit_phase(model, recipe, optimizer, *, phase, epochs, run, on_compiled=None, guard=None):
    """Recompiles `model` with `optimizer` and trains it for `epochs` in one `fit`, with the
    phase's recipe.

    Args:
        model: the transfer model, its trainable flags set for the phase.
        recipe: the phase's `keras_recipes.Recipe` (its learning rate, its backup folder):
            a recipe model keeps it as `model.recipe`, whose `fit` adds its callbacks;
            for another model they are added here.
        optimizer: the phase's new optimizer.
        phase: int, 1 or 2.
        epochs: int, the phase's epochs.
        run: `PhaseRun`.
        on_compiled: callable or None, called with no argument after the recompile and
            before `fit` (phase 2 saves or loads its starting point there).
        guard: a `keep_best.KeepBest` or None: it scores each epoch, and restores the
            best weights once `fit` has returned (after early stopping has acted).

    Returns:
        The phase's `History`, the epochs a resumed run had finished before included.
    """
    recompile(model, optimizer)
    recipe_model = isinstance(model, RecipeTraining)
    if recipe_model:
        model.recipe = recipe
    if on_compiled is not None:
        on_compiled()
    callbacks = list(run.callbacks)
    if guard is not None:
        callbacks.append(guard)
    if not recipe_model:
        callbacks = recipe.callbacks(model, callbacks, epochs=epochs,
                                     has_validation=run.validation_data is not None,
                                     data={**run.fit_data,
                                           "steps_per_epoch": run.steps_per_epoch})
    # A backup restored by an earlier fit (phase 1) must not move this one's start.
    ki.clear_initial_epoch(model)
    model.fine_tune_phase = phase  # which phase this `fit` is, for the callbacks
    try:
        history = model.fit(**run.fit_data, validation_data=run.validation_data, epochs=epochs,
                            steps_per_epoch=run.steps_per_epoch, callbacks=callbacks,
                            verbose=run.verbose)
    finally:
        ki.clear_initial_epoch(model)
        model.fine_tune_phase = None
    if not recipe_model:  # (a recipe model's fit does this itself)
        history = next(c for c in callbacks if isinstance(c, RecipeState)).complete(history)
    if guard is not None:
        guard.restore(model)
    return history


def kept_epoch(model, history, callbacks=()):
    """The epoch (from 0, in its phase) whose weights a phase's `fit` left in `model`.

    The epoch an `EarlyStopping` with `restore_best_weights` restored (a
    `RecipeModel`'s own, of its latest `fit`, or else one of `callbacks`), else the
    phase's last epoch; None when the phase ran no epoch.
    """
    if not history.epoch:
        return None
    stopping = getattr(model, "early_stopping", None)
    candidates = [stopping] if stopping is not None else [
        callback for callback in callbacks if isinstance(callback, keras.callbacks.EarlyStopping)]
    for callback in candidates:
        if callback.restore_best_weights and callback.best_weights is not None:
            return int(callback.best_epoch)
    return int(history.epoch[-1])


def stopped_on_nan(history):
    """Whether a phase ended on a NaN or infinite loss (the next phase does not run)."""
    losses = history.history.get("loss") or [0.0]
    return not math.isfinite(losses[-1])


def combined_history(model, histories, best=None, verbose=0):
    """One `History` from the phases' `(phase, history)`, with a `"phase"` entry per epoch.

    Args:
        model: the model.
        histories: list of `(phase, History)`.
        best: dict or None, the `KeepBest.outcome` of phase 2: it goes to
            `history.params["best_weights"]`, and is printed when `verbose` and the
            weights were restored.
        verbose: as `fit`'s.
    """
    combined = keras.callbacks.History()
    combined.set_model(model)
    keys = []
    for _, history in histories:
        keys += [key for key in history.history if key not in keys]
    combined.history = {key: [] for key in keys}
    combined.history["phase"] = []
    combined.params = {}
    for phase, history in histories:
        epochs = len(history.epoch)
        for key in keys:
            combined.history[key] += list(history.history.get(key, [None] * epochs))
        combined.history["phase"] += [phase] * epochs
        combined.params[f"phase_{phase}"] = dict(history.params or {})
    combined.epoch = list(range(len(combined.history["phase"])))
    if best is not None:
        combined.params["best_weights"] = best
        if verbose and best["restored"]:
            print(_restored_message(best))
    return combined


def _restored_message(best):
    if best["phase"] == 1:
        return (f"fine_tune: no epoch of phase 2 improved {best['monitor']} on the head's "
                f"({best['phase_1_value']:.4f}); restored the weights phase 2 started from.")
    return (f"fine_tune: restored the weights of phase 2's epoch {best['phase_2_epoch'] + 1}, "
            f"the best {best['monitor']} ({best['value']:.4f}; the head's: "
            f"{best['phase_1_value']:.4f}).")
