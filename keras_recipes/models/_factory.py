"""What every factory shares: its architecture checks, the recipe made once from its
training arguments, and the model built and compiled with that recipe."""

from __future__ import annotations

import inspect

from keras_recipes import _validation as v
from keras_recipes._docstrings import fill_docstring
from keras_recipes.recipe import TRAINING_OPTIONS, Recipe
from keras_recipes.training.compiling import compile_with_recipe
from keras_recipes.training.recipe_model import RecipeModel

__all__ = ["assemble", "check_architecture", "documented", "recipe_for"]

# The deprecated form of `schedule`, still a parameter of the factories.
_ALIASES = ("one_cycle",)

# The arguments the public entry points document alike, written once (see `documented`).
_ARGUMENT_DOCS = {
    "task_arguments": """
        input_shape: tuple of ints, the shape of one sample.
        num_classes: int >= 2, or `None` with `task="regression"`.
        task: str, as in `build_default_dnn`. Defaults to `"auto"`.
        num_outputs: int, regression targets. Defaults to `1`.
        label_smoothing: float in [0, 1), for a classification task, as in
            `build_default_dnn`. Defaults to `0.0`.
    """,
    "training_options": """
        optimizer, learning_rate, schedule, schedule_kwargs, total_steps, clipnorm,
            optimizer_kwargs, early_stopping_patience, swa_epochs, backup_dir,
            distribution, steps_per_execution, jit_compile, one_cycle: the
            training options, each as documented in `keras_recipes.Recipe` (which
            the model keeps as `model.recipe`).
    """,
    "recipe_argument": """
        recipe: a `keras_recipes.Recipe` or None: the training options as one
            value, instead of the arguments above (which are then left out).
            Defaults to `None`.
    """,
}


def documented(*names):
    """A decorator that writes the arguments documented alike by the public entry points
    (`"task_arguments"`, `"training_options"`, `"recipe_argument"`) into the docstring of
    the one it decorates, where it names them as `{{name}}` (see `_docstrings`)."""
    return fill_docstring(**{name: _ARGUMENT_DOCS[name] for name in names})


def check_architecture(*, num_hidden_layers, units, dropout_rate, seed, min_hidden_layers=1):
    """Validates the architecture arguments every dense factory shares."""
    v.check_int("num_hidden_layers", num_hidden_layers, min_value=min_hidden_layers)
    v.check_int("units", units, min_value=1)
    v.check_number("dropout_rate", dropout_rate, low=0, high=1, high_inclusive=False)
    v.check_seed(seed)


def recipe_for(function, arguments):
    """The `Recipe` a public entry point trains with, made (and so checked) once.

    Args:
        function: the entry point (`build_default_dnn`, ...); its parameters named
            like a recipe option are its training arguments.
        arguments: dict, the values it was called with (its `locals()`), `recipe`
            among them.

    Returns:
        The given `recipe`, or a new one from the training arguments.

    Raises:
        ValueError: for a training argument changed from its default beside a
            `recipe` (which one would win is not obvious).
        TypeError: for a `recipe` that is not a `keras_recipes.Recipe`.
    """
    parameters = inspect.signature(function).parameters
    given = {name: arguments[name] for name in parameters
             if name in TRAINING_OPTIONS or name in _ALIASES}
    recipe = arguments.get("recipe")
    if recipe is None:
        return Recipe(**given)
    if not isinstance(recipe, Recipe):
        v.fail("recipe", recipe, "a keras_recipes.Recipe or None", error=TypeError)
    for name, value in given.items():
        default = parameters[name].default
        if value is not default and not _equal(value, default):
            v.fail(name, value, "left out when `recipe` is given",
                   hint=f"(the recipe holds it: pass recipe.replace({name}=...))")
    return recipe


def _equal(value, default):
    try:
        return bool(value == default)
    except (TypeError, ValueError):
        return False


def assemble(build_graph, recipe, *, name, loss, metrics):
    """Builds the graph and the `RecipeModel` inside the recipe's distribution, and
    compiles it with the recipe.

    Args:
        build_graph: function returning `(inputs, outputs)`.
        recipe: the `keras_recipes.Recipe`.
        name: str, the model's name.
        loss, metrics: as for `compile`.

    Returns:
        The compiled `RecipeModel`.
    """
    def make_model():
        inputs, outputs = build_graph()
        return RecipeModel(inputs, outputs, name=name, recipe=recipe)

    return compile_with_recipe(make_model, recipe, loss=loss, metrics=metrics)
