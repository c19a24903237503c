"""The arguments of a recipe model's `fit`, `evaluate` and `predict` calls: bound by name with
Keras's defaults, the progress bar added, the batch size `TrainingMonitor`s are told, and
what identifies a `fit` for its backup."""

from __future__ import annotations

import inspect

import keras

from keras_recipes import _batches
from keras_recipes.callbacks.progress_bar import ChunkedProgbarLogger
from keras_recipes.callbacks.training_monitor import TrainingMonitor
from keras_recipes.recipe._state import model_fingerprint
from keras_recipes.training._epoch_order import data_fingerprint

__all__ = ["DATA_ARGUMENTS", "EVALUATE_SIGNATURE", "FIT_SIGNATURE", "PREDICT_SIGNATURE",
           "call_arguments", "first", "progress_bar", "run_record",
           "tell_monitors_the_batch_size", "with_progress_bar"]

FIT_SIGNATURE = inspect.signature(keras.Model.fit)
EVALUATE_SIGNATURE = inspect.signature(keras.Model.evaluate)
PREDICT_SIGNATURE = inspect.signature(keras.Model.predict)
# The arguments of `fit` that say what its training data is (`Recipe.callbacks`' `data`).
DATA_ARGUMENTS = ("x", "batch_size", "steps_per_epoch", "validation_split", "validation_data")


def call_arguments(signature, args, kwargs):
    """The arguments of a call of the `keras.Model` method of `signature` (without `self`),
    by name, with Keras's defaults for those not given; its `**kwargs` merged in."""
    arguments = signature.bind(None, *args, **kwargs)
    arguments.apply_defaults()
    params = dict(arguments.arguments)
    params.pop("self")
    extra = params.pop("kwargs", {})
    return {**params, **extra}


def progress_bar(callbacks, verbose):
    """`callbacks` with a progress bar that counts multi-batch calls right, if it prints."""
    if isinstance(callbacks, keras.callbacks.CallbackList):  # fit's validation: fit's own
        return callbacks
    callbacks = list(callbacks or [])
    if verbose != 0 and not any(isinstance(c, keras.callbacks.ProgbarLogger) for c in callbacks):
        callbacks.append(ChunkedProgbarLogger())
    return callbacks


def with_progress_bar(signature, args, kwargs):
    """The keyword arguments of an `evaluate` / `predict` call, with `progress_bar`."""
    params = call_arguments(signature, args, kwargs)
    params["callbacks"] = progress_bar(params["callbacks"], params["verbose"])
    return params


def tell_monitors_the_batch_size(params):
    """Gives each `TrainingMonitor` of a `fit` the batch size it trains with (Keras tells
    callbacks its steps and epochs, not its batch size), where it is known."""
    batch_size = _batches.fit_batch_size(params["x"], params["batch_size"])
    for callback in params["callbacks"]:
        if isinstance(callback, TrainingMonitor) and batch_size is not None:
            callback.fit_batch_size = batch_size


def first(callbacks, kind):
    """The first of `callbacks` that is a `kind`, or None."""
    return next((c for c in callbacks if isinstance(c, kind)), None)


def run_record(recipe, model, params):
    """What identifies a `fit` of `model` with `recipe` for its backup: the recipe, the
    model, the data and the fit's own settings (a rerun with other ones is refused, not
    resumed)."""
    return {"recipe": recipe.get_config(), "model": model_fingerprint(model),
            "data": data_fingerprint(params["x"], params["y"]),
            "epochs": params["epochs"], "batch_size": params["batch_size"],
            "steps_per_epoch": params["steps_per_epoch"],
            "validation_split": params["validation_split"],
            "shuffle": params["shuffle"] if isinstance(params["shuffle"], (bool, str))
            else None}
