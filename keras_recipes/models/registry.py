"""A registry of named recipes, driving the CLI and the registry-parametrized tests."""

from __future__ import annotations

from keras_recipes import _validation as v
from keras_recipes.models.default_dnn import build_default_dnn
from keras_recipes.models.plain_dnn import build_plain_dnn
from keras_recipes.models.self_normalizing import build_self_normalizing_dnn

_RECIPES = {
    "baseline": build_plain_dnn,
    "default_dnn": build_default_dnn,
    "self_normalizing": build_self_normalizing_dnn,
}


def list_recipes():
    """The names of the registered recipes.

    Returns:
        A sorted list of str.

    Example:

    >>> import keras_recipes
    >>> keras_recipes.list_recipes()
    ['baseline', 'default_dnn', 'self_normalizing']
    """
    return sorted(_RECIPES)


def get_recipe(name):
    """The factory registered under `name`.

    Args:
        name: str, a name from `list_recipes()` (case-insensitive).

    Returns:
        The factory function, e.g. `build_default_dnn`.

    Raises:
        ValueError: for an unknown name, with the closest valid one.

    Example:

    >>> import keras_recipes
    >>> keras_recipes.get_recipe("default_dnn").__name__
    'build_default_dnn'
    """
    return _RECIPES[v.check_choice("name", name, _RECIPES)]
