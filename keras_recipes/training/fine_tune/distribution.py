"""The distribution `fine_tune` trains in: the one its model was built in."""

from __future__ import annotations

import contextlib

import keras

from keras_recipes import _keras_internals as ki
from keras_recipes import _validation as v
from keras_recipes.recipe import _execution as execution

__all__ = ["distribution_scope"]


def _own_distribution(model):
    """The distribution `model` was built in, or None.

    TensorFlow records the `tf.distribute.Strategy` whose scope was active when
    a model was created; a `RecipeModel` built with a `keras.distribution`
    distribution (JAX) keeps that distribution's scope.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return ki.distribute_strategy(model)
    if backend == "jax":
        owner = getattr(getattr(model, "_distribution_scope", None), "__self__", None)
        return owner if execution.is_keras_distribution(owner) else None
    return None


def _variables_live_on(model, distribution):
    """Whether a JAX model's variables live on the devices of `distribution`'s mesh
    (as when they are created in its scope; outside, they live on one device)."""
    devices = set(distribution.device_mesh.backend_mesh.devices.flat)
    for variable in model.variables:
        sharding = getattr(getattr(variable, "value", None), "sharding", None)
        if sharding is not None and set(sharding.device_set) != devices:
            return False
    return True


def distribution_scope(model, distribution):
    """The scope in which `fine_tune` creates its optimizers, recompiles and trains.

    `None` takes the distribution the model was built in (none: no scope). A
    given distribution is validated and must be the one the model was built in:
    its variables cannot move into another one.

    Returns:
        A zero-argument function returning a context manager.
    """
    own = _own_distribution(model)
    if distribution is None:
        return own.scope if own is not None else contextlib.nullcontext
    scope = execution.distribution_scope(distribution)  # type and backend
    if own is not None and own is not distribution:
        v.fail("distribution", distribution, "None or the distribution the model was built in",
               hint=f"(the model was built in {own!r})")
    if own is None and not (keras.backend.backend() == "jax"
                            and _variables_live_on(model, distribution)):
        v.fail("distribution", distribution, "None for a model built outside a distribution",
               hint="(its variables were not created in the distribution's scope; build it "
               "with build_transfer_model(..., distribution=...), or inside "
               "`distribution.scope()`)")
    return scope
