"""Saving and restoring what a few training steps or training-mode passes change.

`find_learning_rate` and `diagnose` train a model for a few steps and
`TrainingMonitor` runs training-mode passes in the middle of `fit`; afterwards the
model must be exactly as it was, so that training after them is identical to
training without them. This module is the one place that knows what to save:

- `preserved_model_state(model)`: every model variable (weights, BatchNorm
  statistics, seed-generator states), the metric variables and, on PyTorch, the
  global random generator (unseeded dropout draws its masks from it);
- `preserved_training_state(model)`: all of that plus every optimizer variable
  (iterations, slots, learning-rate variable, loss scale), the optimizer's learning
  rate or schedule object, the cached train function and `stop_training`.

Both restore however the block exits (an error, `KeyboardInterrupt`).
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

from keras_recipes import _keras_internals as internals
from keras_recipes import _validation as v

__all__ = [
    "build_for_training",
    "check_compiled_model",
    "loss_value",
    "preserved_global_random_state",
    "preserved_model_state",
    "preserved_training_state",
]


def check_compiled_model(model, name="model"):
    """Raises unless `model` is a `keras.Model` compiled with an optimizer."""
    if not isinstance(model, keras.Model):
        v.fail(name, model, "a keras.Model", error=TypeError)
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", False):
        v.fail(
            name,
            model,
            "a compiled keras.Model",
            hint="Call `model.compile(optimizer=..., loss=...)` first",
        )


def build_for_training(model, batch):
    """Builds the model, its compiled loss/metrics and the optimizer as `fit` would.

    Building the optimizer up front (instead of inside the first train step)
    creates exactly the variables the first `fit` would create, with the same
    initial values, so they can be snapshotted and restored.
    """
    internals.symbolic_build(model, batch)


def loss_value(logs, caller="find_learning_rate"):
    """The training loss in the logs of `train_on_batch(..., return_dict=True)`."""
    value = logs.get("loss") if isinstance(logs, dict) else None
    if value is None:
        raise ValueError(
            "The model's training step returned no `loss` (got keys "
            f"{sorted(logs) if isinstance(logs, dict) else logs!r}); "
            f"{caller} needs a model compiled with a loss."
        )
    return float(np.asarray(value).reshape(-1)[0])


@contextlib.contextmanager
def preserved_global_random_state():
    """Restores the backend's global random generator, however the block exits.

    On PyTorch, Keras draws the masks of unseeded dropout layers
    (`Dropout(rate)` without `seed`) from torch's global generator, so a few
    training-mode passes would shift every later mask of the user's `fit`. On
    TensorFlow and JAX all Keras randomness lives in seed-generator variables,
    which are restored with the other variables.
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
def preserved_model_state(model):
    """Restores the model and metric variables and the global random generator.

    For training-mode forward and backward passes that update no optimizer
    (BatchNorm statistics and seed states change; the optimizer does not).
    """
    with _preserved(model, optimizer=False):
        yield


@contextlib.contextmanager
def preserved_training_state(model):
    """Restores everything a few training steps can change (see the module docstring)."""
    with _preserved(model, optimizer=True):
        yield


@contextlib.contextmanager
def _preserved(model, optimizer):
    with preserved_global_random_state():
        variables = list(model.variables)
        if optimizer:
            variables = _unique(variables + _optimizer_variables(model.optimizer))
            saved_learning_rate = internals.learning_rate_object(model.optimizer)
            saved_train_function = model.train_function
            saved_stop_training = model.stop_training
        saved = [_to_numpy(variable) for variable in variables]
        metric_variables = list(model.metrics_variables)
        saved_metrics = [_to_numpy(variable) for variable in metric_variables]
        try:
            yield
        finally:
            if optimizer:
                internals.set_learning_rate_object(model.optimizer, saved_learning_rate)
            for variable, value in zip(variables, saved):
                variable.assign(value)
            if optimizer:  # metrics created by the steps start from zero
                for metric in model.metrics:
                    metric.reset_state()
            for variable, value in zip(metric_variables, saved_metrics):
                variable.assign(value)
            if optimizer:
                model.train_function = saved_train_function
                model.stop_training = saved_stop_training


def _unique(variables):
    seen, out = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            out.append(variable)
    return out


def _optimizer_variables(optimizer):
    variables = list(optimizer.variables)
    inner = internals.inner_optimizer(optimizer)
    if inner is not optimizer:
        variables += list(inner.variables)
    return _unique(variables)


def _to_numpy(variable):
    return np.array(variable.numpy(), copy=True)
