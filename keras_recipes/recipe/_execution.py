"""How a recipe runs: the distribution's scope (a `tf.distribute` strategy or a
`keras.distribution` distribution) and the execution defaults, `steps_per_execution`
and `jit_compile`, checked (`check_execution`) and resolved from `"auto"`
(`resolve_execution`, which `tests/conftest.py` patches to leave XLA out of the fast
suite); and the batches per call that run exactly a requested number of steps."""

from __future__ import annotations

import keras

from keras_recipes import _graph_walk
from keras_recipes import _validation as v

__all__ = [
    "STEPS_PER_EXECUTION",
    "check_execution",
    "dividing_steps_per_execution",
    "distribution_scope",
    "is_keras_distribution",
    "has_convolutions",
    "resolve_execution",
]

# Batches per compiled call for `steps_per_execution="auto"`: one Python round trip
# per 32 steps instead of per step (see benchmarks/RESULTS.md, recipe fit throughput).
STEPS_PER_EXECUTION = 32


def is_keras_distribution(distribution):
    """Whether `distribution` is a `keras.distribution` one (not a `tf.distribute` strategy).

    Keras exports the distributions but not their base class.
    """
    return isinstance(distribution, (keras.distribution.DataParallel,
                                     keras.distribution.ModelParallel))


def distribution_scope(distribution):
    """Validates `distribution`; returns a zero-argument function opening its scope.

    Accepts a `tf.distribute.Strategy` on the TensorFlow backend
    (`MirroredStrategy`, `TPUStrategy`; not `MultiWorkerMirroredStrategy`, which Keras 3
    cannot train with) or a
    `keras.distribution.Distribution` (`DataParallel`, `ModelParallel`) on JAX.
    """
    import contextlib

    if distribution is None:
        return contextlib.nullcontext
    backend = keras.backend.backend()
    if is_keras_distribution(distribution):
        if backend != "jax":
            v.fail("distribution", distribution,
                   "a tf.distribute.Strategy on the TensorFlow backend",
                   hint=f"keras.distribution needs the JAX backend; this is {backend!r}")
        return distribution.scope
    if type(distribution).__name__ in ("MultiWorkerMirroredStrategy",
                                       "CollectiveAllReduceStrategy"):
        v.fail("distribution", distribution, "a distribution Keras 3 can train with",
               hint="(Keras 3's fit does not support tf.distribute.MultiWorkerMirroredStrategy, "
                    "keras-team/keras#20585; to train on several machines, use "
                    "keras.distribution on JAX: distribution=keras_recipes.join_processes() "
                    "in each process -- see the README's \"More than one machine\")")
    if type(distribution).__module__.startswith("tensorflow") and hasattr(distribution, "scope"):
        if backend != "tensorflow":
            v.fail("distribution", distribution,
                   "a keras.distribution distribution on the JAX backend",
                   hint=f"tf.distribute strategies need the TensorFlow backend; this is "
                   f"{backend!r}")
        return distribution.scope
    v.fail("distribution", distribution,
           "None, a tf.distribute.Strategy (TensorFlow) or a keras.distribution "
           "distribution (JAX)", error=TypeError)


def check_execution(recipe):
    """Validates a recipe's `steps_per_execution` and `jit_compile`.

    Raises:
        ValueError, TypeError: naming the argument.
    """
    steps_per_execution, jit_compile = recipe.steps_per_execution, recipe.jit_compile
    if steps_per_execution != "auto":
        try:
            v.check_int("steps_per_execution", steps_per_execution, min_value=1)
        except (TypeError, ValueError) as error:
            v.fail("steps_per_execution", steps_per_execution, 'a positive integer or "auto"',
                   error=type(error) if not isinstance(steps_per_execution, str) else ValueError)
        if keras.backend.backend() == "torch" and steps_per_execution != 1:
            v.fail("steps_per_execution", steps_per_execution, '1 or "auto"',
                   hint="Keras's PyTorch backend runs one batch per call")
    if jit_compile != "auto" and not isinstance(jit_compile, bool):
        v.fail("jit_compile", jit_compile, 'True, False or "auto"',
               error=ValueError if isinstance(jit_compile, str) else TypeError)


def resolve_execution(recipe, model=None):
    """The `steps_per_execution` and `jit_compile` a recipe compiles with, `"auto"` resolved.

    The options are checked already (`check_execution`); `tests/conftest.py`
    patches this function to leave XLA out of the fast suite.

    `steps_per_execution="auto"` is 32, or 1 on PyTorch, whose Keras trainer runs
    one batch per call, and under a `tf.distribute` strategy, where Keras 3.15's
    multi-step loop fails ("You must feed a value for placeholder tensor",
    apparently keras-team/keras#19246). Still so in the Keras 3.16 nightly
    (3.16.0.dev2026102704): measured with a two-replica `MirroredStrategy` on CPU,
    `steps_per_execution=4` and a validation split, the same error on both.

    `jit_compile="auto"` on TensorFlow is chosen by the kind of layers `model` has,
    by measurement (`bench_speed.py --only models`; see the README): XLA on a CPU makes
    dense and recurrent networks faster (Keras's own "auto" turns it off there), and
    convolutional ones slower (a small CNN and a MobileNetV2 transfer model trained
    faster without it), so it is on unless the model has a convolution (nested models
    included). Under a `tf.distribute` strategy Keras's own choice is kept.

    Args:
        recipe: the `Recipe`.
        model: the model to compile, or None (XLA's choice then ignores its layers).

    Returns:
        `(steps_per_execution, jit_compile)` to compile with.
    """
    steps_per_execution, jit_compile = recipe.steps_per_execution, recipe.jit_compile
    backend = keras.backend.backend()
    distribution = recipe.distribution
    tf_strategy = distribution is not None and not is_keras_distribution(distribution)
    if steps_per_execution == "auto":
        steps_per_execution = 1 if backend == "torch" or tf_strategy else STEPS_PER_EXECUTION
    if jit_compile == "auto" and backend == "tensorflow" and not tf_strategy:
        jit_compile = model is None or not has_convolutions(model)
    return steps_per_execution, jit_compile


_CONVOLUTIONS = tuple(getattr(keras.layers, name) for name in (
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"))


def has_convolutions(model):
    """Whether `model`, or a layer or model inside it, is a Keras convolution layer."""
    return any(isinstance(step.layer, _CONVOLUTIONS) for step in _graph_walk.walk(
        model, lambda layer: _graph_walk.sublayers(layer) or None, unique=True))


def dividing_steps_per_execution(configured, *step_counts):
    """The batches per compiled call that run exactly `step_counts` steps.

    Keras runs whole groups of `steps_per_execution` batches: with 32 per call,
    `fit(steps_per_epoch=8)` on a repeated dataset trains 32 steps an epoch and
    `evaluate(steps=3)` reads 32 batches. A group ends early only where the data
    runs out (arrays, a finite dataset), never at a requested count. So where a
    count is requested, each group must divide it: this is the largest number of
    batches per call, at most `configured`, that divides every given count (1 for
    a count with no such divisor, such as a prime above `configured`).

    Args:
        configured: int >= 1, the compiled `steps_per_execution`.
        *step_counts: int or None, the requested steps (`steps_per_epoch`,
            `validation_steps`, `steps`); None where the data decides.

    Returns:
        int, between 1 and `configured`.
    """
    counts = [int(count) for count in step_counts if count is not None]
    for candidate in range(configured, 0, -1):
        if all(count % candidate == 0 for count in counts):
            return candidate
    return 1
