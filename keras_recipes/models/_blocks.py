"""Building blocks shared by the recipe factories: activations matched to their
initializers, output heads per task, and optimizers with 1cycle attached."""

from __future__ import annotations

import os
import warnings

import keras

from keras_recipes import _keras_internals, datasets
from keras_recipes import _validation as v
from keras_recipes import optimizers as recipe_optimizers
from keras_recipes.schedules import OneCycle, OneCycleMomentum

# Each activation with the initializer that keeps its variance stable
# (He for the ReLU family and its smooth cousins, LeCun for SELU).
ACTIVATION_INITIALIZERS = {
    "relu": "he_normal",
    "leaky_relu": "he_normal",
    "prelu": "he_normal",
    "elu": "he_normal",
    "selu": "lecun_normal",
    "swish": "he_normal",
    "silu": "he_normal",
    "gelu": "he_normal",
}

OPTIMIZERS = {
    "nadam": recipe_optimizers.Nadam,
    "adam": recipe_optimizers.Adam,
    "adamw": recipe_optimizers.AdamW,
    "sgd": recipe_optimizers.SGD,
}

TASKS = ("auto", "multiclass", "binary", "regression")

# The learning-rate schedules a recipe can run: the 1cycle over learning rate and
# momentum, performance scheduling (ReduceLROnPlateau) or a constant rate; "auto"
# is the 1cycle for an optimizer name and the optimizer as given for an instance.
SCHEDULES = ("auto", "one_cycle", "plateau", "constant")


# Batches per compiled call for `steps_per_execution="auto"`: one Python round trip
# per 32 steps instead of per step (see benchmarks/RESULTS.md, recipe fit throughput).
STEPS_PER_EXECUTION = 32

# Placeholder span of an auto-sized 1cycle until `fit` sets the real one.
_AUTO_TOTAL_STEPS = 100
# `learning_rate="find"`: `fit` runs the LR range finder first.
FIND = "find"
_FIND_PLACEHOLDER = 1e-3


def activation_layer(name, *, layer_name=None):
    """A layer applying the activation `name` (one of `ACTIVATION_INITIALIZERS`)."""
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2, name=layer_name)
    if name == "prelu":
        return keras.layers.PReLU(name=layer_name)
    return keras.layers.Activation("silu" if name == "swish" else name, name=layer_name)


def seeded_initializer(name, seed):
    """The initializer `name`, seeded with `seed` when it is not None."""
    initializer = keras.initializers.get(name)
    if seed is None:
        return initializer
    config = initializer.get_config()
    config["seed"] = seed
    return type(initializer).from_config(config)


def kernel_regularizer(l1, l2):
    """An L1/L2 regularizer, or None when both are 0."""
    if not l1 and not l2:
        return None
    return keras.regularizers.L1L2(l1=l1, l2=l2)


def resolve_task(task, num_classes, num_outputs):
    """Validates the task arguments; returns the concrete task name."""
    task = v.check_choice("task", task, TASKS)
    if task == "regression":
        if num_classes is not None:
            v.fail("num_classes", num_classes, 'None when task="regression"',
                   hint="Use `num_outputs` for the number of regression targets")
        v.check_int("num_outputs", num_outputs, min_value=1)
        return task
    if num_classes is None:
        v.fail("num_classes", num_classes, "an integer >= 2 for classification",
               hint='For regression pass task="regression"')
    v.check_int("num_classes", num_classes, min_value=2)
    if task == "binary" and num_classes != 2:
        v.fail("num_classes", num_classes, '2 when task="binary"')
    if task == "auto":
        return "binary" if num_classes == 2 else "multiclass"
    return task


def task_loss(task):
    """Returns `(loss, metrics)` for a resolved task."""
    if task == "multiclass":
        return "sparse_categorical_crossentropy", ["accuracy"]
    if task == "binary":
        return "binary_crossentropy", ["accuracy"]
    return "mse", ["mae"]


def output_layer(task, num_classes, num_outputs, *, seed=None):
    """The output layer for a resolved task: softmax, one sigmoid unit, or linear units."""
    initializer = seeded_initializer("glorot_uniform", seed)
    if task == "multiclass":
        return keras.layers.Dense(num_classes, activation="softmax",
                                  kernel_initializer=initializer, name="output")
    if task == "binary":
        return keras.layers.Dense(1, activation="sigmoid", kernel_initializer=initializer,
                                  name="output")
    return keras.layers.Dense(num_outputs, kernel_initializer=initializer, name="output")


def normalization_layer(normalization_data=None, mean=None, variance=None, *, input_shape):
    """A `Normalization` layer adapted to data or built from statistics, or None."""
    if normalization_data is None and mean is None and variance is None:
        return None
    if normalization_data is not None:
        if mean is not None or variance is not None:
            v.fail("normalization_data", v.Described("<array>"),
                   "None when `input_mean`/`input_variance` are given",
                   hint="Pass either data to adapt to or the statistics, not both")
        import numpy as np

        data = np.asarray(normalization_data, dtype="float32")
        if data.ndim < 2 or data.shape[1:] != tuple(input_shape):
            v.fail("normalization_data", v.Described(f"<array of shape {data.shape}>"),
                   f"an array of shape (num_samples, *{tuple(input_shape)}) matching "
                   "`input_shape`")
        if not np.all(np.isfinite(data)):
            v.fail("normalization_data", v.Described("<array with NaN or Inf>"), "finite values")
        mean, variance = datasets.standardization_statistics(data.reshape(len(data), -1))
        return keras.layers.Normalization(mean=mean, variance=variance, name="standardize")
    if mean is None or variance is None:
        v.fail("input_mean" if mean is None else "input_variance", None,
               "given together with the other statistic")
    return keras.layers.Normalization(mean=mean, variance=variance, name="standardize")


def resolve_schedule(schedule, one_cycle, optimizer):
    """Validates `schedule` (and its deprecated alias `one_cycle`); resolves `"auto"`.

    `one_cycle=True` means `schedule="one_cycle"` and `one_cycle=False` means
    `schedule="constant"`; it is kept for compatibility (with a
    `DeprecationWarning`) and may not contradict `schedule`.

    Returns:
        `"one_cycle"`, `"plateau"` or `"constant"`.
    """
    schedule = v.check_choice("schedule", schedule, SCHEDULES)
    if one_cycle != "auto":
        v.check_bool("one_cycle", one_cycle)
        warnings.warn('`one_cycle` is deprecated: pass schedule="one_cycle" (for True) or '
                      'schedule="constant" (for False)', DeprecationWarning, stacklevel=3)
        implied = "one_cycle" if one_cycle else "constant"
        if schedule not in ("auto", implied):
            v.fail("one_cycle", one_cycle, f"left out when `schedule={schedule!r}`",
                   hint="(`one_cycle` is the deprecated form of `schedule`)")
        schedule = implied
    is_instance = isinstance(optimizer, keras.optimizers.Optimizer)
    if schedule == "auto":
        return "constant" if is_instance else "one_cycle"
    if is_instance and schedule == "one_cycle":
        if one_cycle is True:
            v.fail("one_cycle", one_cycle, 'False (or "auto") when `optimizer` is an instance',
                   hint="Pass an optimizer name to get the recipe's 1cycle")
        v.fail("schedule", schedule, '"constant", "plateau" or "auto" when `optimizer` is an '
               "instance", hint="Pass an optimizer name to get the recipe's 1cycle")
    if is_instance and schedule == "plateau" and isinstance(
            _keras_internals.learning_rate_object(optimizer),
            keras.optimizers.schedules.LearningRateSchedule):
        v.fail("schedule", schedule, '"constant" or "auto" for an optimizer whose learning '
               "rate is a schedule",
               hint="(ReduceLROnPlateau can only change a float learning rate; create the "
                    "optimizer with `learning_rate=<float>`)")
    return schedule


def check_optimizer(optimizer, learning_rate, one_cycle, total_steps, clipnorm):
    """Validates the optimizer arguments of a factory without creating anything.

    Returns:
        `(optimizer, one_cycle)` normalised: a lower-case name or the instance,
        and `one_cycle` resolved from `"auto"`.
    """
    is_instance = isinstance(optimizer, keras.optimizers.Optimizer)
    if not is_instance:
        if not isinstance(optimizer, str):
            v.fail("optimizer", optimizer,
                   "an optimizer name (" + ", ".join(repr(n) for n in OPTIMIZERS)
                   + ") or a keras.optimizers.Optimizer instance", error=TypeError)
        optimizer = v.check_choice("optimizer", optimizer, OPTIMIZERS)
    if one_cycle == "auto":
        one_cycle = not is_instance
    v.check_bool("one_cycle", one_cycle)
    v.check_int("total_steps", total_steps, min_value=1, allow_none=True)
    v.check_number("clipnorm", clipnorm, low=0, low_inclusive=False, allow_none=True)
    if is_instance and one_cycle:
        v.fail("one_cycle", one_cycle, 'False (or "auto") when `optimizer` is an instance',
               hint="Pass an optimizer name to get the recipe's 1cycle")
    if not is_instance and learning_rate != FIND:
        if isinstance(learning_rate, str):
            v.fail("learning_rate", learning_rate, 'a number > 0 or "find"')
        v.check_number("learning_rate", learning_rate, low=0, low_inclusive=False)
    return optimizer, one_cycle


def build_optimizer(optimizer, learning_rate, one_cycle, total_steps, clipnorm,
                    **optimizer_kwargs):
    """Validates and creates the optimizer of a factory.

    `optimizer_kwargs` are more arguments of a named optimizer (`use_ema`, ...).

    Returns:
        `(optimizer, auto_one_cycle)`: the optimizer to compile with, and whether
        `fit` must stretch its 1cycle over its steps.
    """
    optimizer, one_cycle = check_optimizer(optimizer, learning_rate, one_cycle, total_steps,
                                           clipnorm)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer, False
    kwargs = dict(optimizer_kwargs)
    if clipnorm is not None:
        kwargs["clipnorm"] = clipnorm
    momentum_name = "momentum" if optimizer == "sgd" else "beta_1"
    if not one_cycle:
        if optimizer == "sgd":
            kwargs["momentum"] = 0.9
        if learning_rate == FIND:
            learning_rate = _FIND_PLACEHOLDER
        return OPTIMIZERS[optimizer](learning_rate=learning_rate, **kwargs), False
    if learning_rate == FIND:
        # A placeholder until `fit` runs the finder (RecipeModel.auto_learning_rate).
        learning_rate = _FIND_PLACEHOLDER
    steps = total_steps or _AUTO_TOTAL_STEPS
    kwargs[momentum_name] = OneCycleMomentum(total_steps=steps)
    schedule = OneCycle(max_learning_rate=learning_rate, total_steps=steps)
    return OPTIMIZERS[optimizer](learning_rate=schedule, **kwargs), total_steps is None


def check_common(*, num_hidden_layers, units, dropout_rate, seed, early_stopping_patience,
                 min_hidden_layers=1):
    """Validates the arguments every recipe factory shares."""
    v.check_int("num_hidden_layers", num_hidden_layers, min_value=min_hidden_layers)
    v.check_int("units", units, min_value=1)
    v.check_number("dropout_rate", dropout_rate, low=0, high=1, high_inclusive=False)
    v.check_seed(seed)
    v.check_int("early_stopping_patience", early_stopping_patience, min_value=0,
                allow_none=True)


def layer_seed(seed, index):
    """A distinct, reproducible seed per layer (None stays None)."""
    return None if seed is None else seed + index


def _is_keras_distribution(distribution):
    # Keras exports the distributions but not their base class.
    return isinstance(distribution, (keras.distribution.DataParallel,
                                     keras.distribution.ModelParallel))


def distribution_scope(distribution):
    """Validates `distribution`; returns a zero-argument function opening its scope.

    Accepts a `tf.distribute.Strategy` on the TensorFlow backend
    (`MirroredStrategy`, `MultiWorkerMirroredStrategy`, `TPUStrategy`) or a
    `keras.distribution.Distribution` (`DataParallel`, `ModelParallel`) on JAX.
    """
    import contextlib

    if distribution is None:
        return contextlib.nullcontext
    backend = keras.backend.backend()
    if _is_keras_distribution(distribution):
        if backend != "jax":
            v.fail("distribution", distribution,
                   "a tf.distribute.Strategy on the TensorFlow backend",
                   hint=f"keras.distribution needs the JAX backend; this is {backend!r}")
        return distribution.scope
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


def check_execution(steps_per_execution, jit_compile, distribution=None):
    """Validates the factories' `steps_per_execution` and `jit_compile`; resolves `"auto"`.

    `steps_per_execution="auto"` is 32, or 1 on PyTorch, whose Keras trainer runs
    one batch per call, and under a `tf.distribute` strategy, where Keras 3.15's
    multi-step loop fails ("You must feed a value for placeholder tensor",
    apparently keras-team/keras#19246).

    `jit_compile="auto"` differs from Keras's `"auto"` on one point: Keras turns
    XLA off for TensorFlow on a machine without an accelerator, where it still
    makes the recipes' networks faster (benchmarks/RESULTS.md); here it is on
    there too (Keras itself falls back when a layer does not support it). Under
    a `tf.distribute` strategy Keras's own choice is kept.

    Returns:
        `(steps_per_execution, jit_compile)` to compile with.
    """
    backend = keras.backend.backend()
    tf_strategy = distribution is not None and not _is_keras_distribution(distribution)
    if steps_per_execution == "auto":
        steps_per_execution = 1 if backend == "torch" or tf_strategy else STEPS_PER_EXECUTION
    else:
        try:
            v.check_int("steps_per_execution", steps_per_execution, min_value=1)
        except (TypeError, ValueError) as error:
            v.fail("steps_per_execution", steps_per_execution, 'a positive integer or "auto"',
                   error=type(error) if not isinstance(steps_per_execution, str) else ValueError)
    if backend == "torch" and steps_per_execution != 1:
        v.fail("steps_per_execution", steps_per_execution, '1 or "auto"',
               hint="Keras's PyTorch backend runs one batch per call")
    if jit_compile != "auto" and not isinstance(jit_compile, bool):
        v.fail("jit_compile", jit_compile, 'True, False or "auto"',
               error=ValueError if isinstance(jit_compile, str) else TypeError)
    if jit_compile == "auto" and backend == "tensorflow" and not tf_strategy:
        jit_compile = True
    return steps_per_execution, jit_compile


def assemble(build_graph, make_optimizer, *, name, loss, metrics, early_stopping_patience,
             backup_dir=None, distribution=None, learning_rate=None, schedule=None,
             steps_per_execution="auto", jit_compile="auto"):
    """Creates, inside the distribution's scope, the optimizer, the graph and the model.

    Args:
        build_graph: function returning `(inputs, outputs)`.
        make_optimizer, loss, metrics, early_stopping_patience, backup_dir,
            distribution, learning_rate, schedule, steps_per_execution,
            jit_compile: as for `compile_with_recipe`.
        name: str, the model's name.

    Returns:
        The compiled `RecipeModel`.
    """
    from keras_recipes.models._recipe_model import RecipeModel

    def make_model(**settings):
        inputs, outputs = build_graph()
        return RecipeModel(inputs, outputs, name=name, **settings)

    return compile_with_recipe(
        make_model, make_optimizer, loss=loss, metrics=metrics,
        early_stopping_patience=early_stopping_patience, backup_dir=backup_dir,
        distribution=distribution, learning_rate=learning_rate, schedule=schedule,
        steps_per_execution=steps_per_execution, jit_compile=jit_compile)


def compile_with_recipe(make_model, make_optimizer, *, loss, metrics, early_stopping_patience,
                        backup_dir=None, distribution=None, learning_rate=None, schedule=None,
                        steps_per_execution="auto", jit_compile="auto", **compile_kwargs):
    """The compile path every recipe shares: factories and `compile_recipe`.

    Inside the distribution's scope, creates the optimizer, then the model with
    its recipe settings, and compiles it with the execution defaults.

    Args:
        make_model: function taking the `RecipeModel` settings as keyword
            arguments (`early_stopping_patience`, `auto_one_cycle`, `backup_dir`,
            `auto_learning_rate`, `reduce_lr_on_plateau`) and returning the
            model to compile.
        make_optimizer: function returning `(optimizer, auto_one_cycle)`.
        loss, metrics: as for `compile`.
        early_stopping_patience, backup_dir: as for `RecipeModel`.
        distribution: None, a `tf.distribute.Strategy` or a `keras.distribution`
            distribution.
        learning_rate: the recipe's `learning_rate`; `"find"` makes the first
            `fit` run the LR range finder.
        schedule: str or None, the resolved schedule (`resolve_schedule`);
            `"plateau"` makes `fit` add `ReduceLROnPlateau`.
        steps_per_execution, jit_compile: as for the factories (see `check_execution`).
        **compile_kwargs: more arguments of `compile` (`loss_weights`, ...).

    Returns:
        The compiled model.
    """
    if backup_dir is not None and not isinstance(backup_dir, (str, os.PathLike)):
        v.fail("backup_dir", backup_dir, "None or a folder path", error=TypeError)
    scope = distribution_scope(distribution)
    steps_per_execution, jit_compile = check_execution(steps_per_execution, jit_compile,
                                                       distribution)
    with scope():
        optimizer, auto_one_cycle = make_optimizer()
        model = make_model(early_stopping_patience=early_stopping_patience,
                           auto_one_cycle=auto_one_cycle, backup_dir=backup_dir,
                           auto_learning_rate=learning_rate == FIND,
                           reduce_lr_on_plateau=schedule == "plateau")
        with warnings.catch_warnings():
            # A layer XLA cannot compile makes Keras fall back to plain graphs, as "auto" would.
            warnings.filterwarnings("ignore", message=".*doesn't support `jit_compile=True`")
            model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                          steps_per_execution=steps_per_execution, jit_compile=jit_compile,
                          **compile_kwargs)
    if _is_keras_distribution(distribution):
        model._distribution_scope = scope
    return model
