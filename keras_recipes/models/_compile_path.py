"""The compile path every recipe shares (the factories and `compile_recipe`): the
arguments every factory checks, then, inside the distribution's scope, the optimizer,
the model with its recipe settings, and `compile` with the execution defaults."""

from __future__ import annotations

import os
import warnings

from keras_recipes import _validation as v
from keras_recipes.models import _execution as execution
from keras_recipes.models import _optimizer_choice as optimizer_choice

__all__ = [
    "assemble",
    "check_common",
    "check_training_arguments",
    "compile_with_recipe",
]

def check_common(*, num_hidden_layers, units, dropout_rate, seed, early_stopping_patience,
                 min_hidden_layers=1):
    """Validates the arguments every recipe factory shares."""
    v.check_int("num_hidden_layers", num_hidden_layers, min_value=min_hidden_layers)
    v.check_int("units", units, min_value=1)
    v.check_number("dropout_rate", dropout_rate, low=0, high=1, high_inclusive=False)
    v.check_seed(seed)
    check_training_arguments(early_stopping_patience=early_stopping_patience)


def check_training_arguments(*, early_stopping_patience):
    """Validates the training arguments every recipe shares, `compile_recipe` included."""
    v.check_int("early_stopping_patience", early_stopping_patience, min_value=0,
                allow_none=True)


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
    scope = execution.distribution_scope(distribution)
    # Through the module, so that tests/conftest.py's patch of `check_execution` applies.
    steps_per_execution, jit_compile = execution.check_execution(steps_per_execution,
                                                                 jit_compile, distribution)
    with scope():
        optimizer, auto_one_cycle = make_optimizer()
        model = make_model(early_stopping_patience=early_stopping_patience,
                           auto_one_cycle=auto_one_cycle, backup_dir=backup_dir,
                           auto_learning_rate=learning_rate == optimizer_choice.FIND,
                           reduce_lr_on_plateau=schedule == "plateau")
        with warnings.catch_warnings():
            # A layer XLA cannot compile makes Keras fall back to plain graphs, as "auto" would.
            warnings.filterwarnings("ignore", message=".*doesn't support `jit_compile=True`")
            model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                          steps_per_execution=steps_per_execution, jit_compile=jit_compile,
                          **compile_kwargs)
    if execution.is_keras_distribution(distribution):
        model._distribution_scope = scope
    return model
