"""A registry of named recipes, driving the CLI and the registry-parametrized tests.

Each recipe is registered as a `RecipeSpec`: the factory that builds and
compiles its model, the function that trains it (`model.fit`, or
`keras_recipes.fine_tune` for transfer learning, in two phases), and the
keyword arguments of that function a config's `fit` section may set.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping

from keras_recipes import _validation as v
from keras_recipes.models.default_dnn import build_default_dnn
from keras_recipes.models.plain_dnn import build_plain_dnn
from keras_recipes.models.self_normalizing import build_self_normalizing_dnn
from keras_recipes.models.transfer import build_transfer_model, transfer_learning_recipe
from keras_recipes.training import fine_tune
from keras_recipes.training.fine_tune.arguments import check_fine_tune_arguments

__all__ = ["RecipeSpec", "fine_tune_model", "fit_model", "get_recipe", "get_recipe_spec",
           "list_recipes"]

# Arguments of a factory that come from the data and the run, never from a config (whose
# `model` section makes the recipe itself).
_DATA_ARGUMENTS = ("input_shape", "num_classes", "seed", "recipe")


@dataclasses.dataclass(frozen=True)
class RecipeSpec:
    """A registered recipe: how its model is built and how it is trained.

    `keras_recipes.get_recipe(name)` returns `build`; the CLI builds with
    `build(data.input_shape, data.num_classes, seed=..., **config.model)` and
    trains with `train(model, (x, y), (x_val, y_val), **config.fit)`, or with
    `train(model, data.train, data.validation, **config.fit)` for a streamed
    dataset (a folder of images, TensorFlow Datasets).

    Attributes:
        name: str, the registered name.
        build: the factory, called as `build(input_shape, num_classes, *,
            seed=None, **model_kwargs)`; returns a compiled model. Its keyword
            arguments with defaults are what a config's `model` section may set.
        train: the training function, called as `train(model, train_data,
            validation_data=None, *, callbacks=None, verbose="auto",
            **fit_kwargs)` with `train_data` a tuple `(x, y)` of arrays or a
            dataset of `(x, y)` batches (a streamed `DatasetSplits`' `train`,
            batched already: `batch_size` then applies to arrays only); returns
            a `keras.callbacks.History`.
        fit_defaults: dict, the keyword arguments of `train` a config's `fit`
            section may set, with their defaults.
        check_fit: callable, `check_fit(fit_kwargs)` validates a complete `fit`
            section before anything is loaded or built; raises `ValueError` or
            `TypeError` naming the argument.
        model_files: tuple of str, the `model` arguments that may name a
            `.keras` file in a config; the CLI loads it (in safe mode) and
            passes the model. Defaults to `()`.
        phases: callable or None, `phases(fit_kwargs)` gives the phase number
            of each `fit` call `train` makes (`[1, 2]` for `fine_tune`), so
            that an interrupted run still labels its epochs. `None` for a
            single `fit` call. Defaults to `None`.
        build_arguments: tuple of callables, the functions whose keyword
            arguments `build` passes on (`build_transfer_model` for
            `transfer_learning`): theirs are a config's `model` keys too.
            Defaults to `()`.

    Example:

    >>> import keras_recipes
    >>> from keras_recipes.models.registry import get_recipe_spec
    >>> spec = get_recipe_spec("transfer_learning")
    >>> spec.build is keras_recipes.get_recipe("transfer_learning")
    True
    >>> spec.fit_defaults["head_epochs"], spec.fit_defaults["epochs"]
    (5, 10)
    """

    name: str
    build: Callable
    train: Callable
    fit_defaults: Mapping
    check_fit: Callable
    model_files: tuple = ()
    phases: Callable | None = None
    build_arguments: tuple = ()

    @property
    def model_defaults(self):
        """dict, the factory's keyword arguments a config may set, with their defaults."""
        defaults = {}
        for function in (self.build, *self.build_arguments):
            for name, p in inspect.signature(function).parameters.items():
                if name not in _DATA_ARGUMENTS and p.default is not inspect.Parameter.empty:
                    defaults.setdefault(name, p.default)
        return defaults

    @property
    def summary(self):
        """str, the first line of the factory's docstring."""
        return (self.build.__doc__ or "").strip().splitlines()[0]


# --- training functions -------------------------------------------------------------------


def fit_model(model, train_data, validation_data=None, *, epochs=30, batch_size=32,
              callbacks=None, verbose="auto"):
    """Trains a recipe's model with one `model.fit` call.

    The training function of the recipes that train in one go (`baseline`,
    `default_dnn`, `self_normalizing`); their `RecipeModel.fit` adds the
    recipe's callbacks (1cycle span, early stopping, stop on NaN).

    Args:
        model: a compiled `keras.Model`, e.g. from `build_default_dnn`.
        train_data: tuple `(x, y)` of arrays, or a dataset of `(x, y)`
            batches (`tf.data.Dataset`, `keras.utils.PyDataset`).
        validation_data: tuple `(x_val, y_val)`, a dataset, or None.
            Defaults to `None`.
        epochs: int >= 1. Defaults to `30`.
        batch_size: int >= 1, for arrays (a dataset is batched already).
            Defaults to `32`.
        callbacks: list of `keras.callbacks.Callback` or None.
            Defaults to `None`.
        verbose: as `fit`'s. Defaults to `"auto"`.

    Returns:
        The `keras.callbacks.History` of `fit`.

    Example:

    >>> import numpy as np, keras_recipes
    >>> from keras_recipes.models.registry import fit_model
    >>> model = keras_recipes.build_default_dnn((4,), 3, num_hidden_layers=1)
    >>> x, y = np.random.rand(64, 4), np.arange(64) % 3
    >>> len(fit_model(model, (x, y), epochs=2, verbose=0).epoch)
    2
    """
    if not isinstance(train_data, (tuple, list)):  # a dataset: batched already
        return model.fit(train_data, validation_data=validation_data, epochs=epochs,
                         shuffle=False, callbacks=callbacks, verbose=verbose)
    x, y = train_data
    return model.fit(x, y, validation_data=validation_data, epochs=epochs,
                     batch_size=batch_size, callbacks=callbacks, verbose=verbose)


def _check_fit_model(fit):
    v.check_int("epochs", fit["epochs"], min_value=1)
    v.check_int("batch_size", fit["batch_size"], min_value=1)


# The arguments of `fine_tune` a config may set; the others (data, callbacks,
# verbose) come from the run, or mirror the model section (see fine_tune_model).
_FINE_TUNE_FIT_KEYS = ("head_epochs", "epochs", "batch_size", "unfreeze",
                       "fine_tune_learning_rate", "discriminative_factor",
                       "discriminative_groups")


def fine_tune_model(model, train_data, validation_data=None, *, callbacks=None,
                    verbose="auto", **kwargs):
    """Trains a transfer model with `keras_recipes.fine_tune`: the head, then the base's top.

    The training function of the `transfer_learning` recipe. Both phases train
    with the model's recipe (`model.recipe`, made from the config's `model`
    section), so that a config's `model.clipnorm` and `model.schedule` hold for
    both; phase 1 at its `learning_rate` (`"find"` included), phase 2 lower.

    Args:
        model: a model built by `build_transfer_model` (or
            `transfer_learning_recipe`).
        train_data: tuple `(x, y)` of arrays, or a dataset, as `fine_tune`'s.
        validation_data: as `fine_tune`'s. Defaults to `None`.
        callbacks: list of `keras.callbacks.Callback` or None, used in both
            phases. Defaults to `None`.
        verbose: as `fit`'s. Defaults to `"auto"`.
        **kwargs: `head_epochs`, `epochs`, `batch_size`, `unfreeze`,
            `fine_tune_learning_rate`, `discriminative_factor`,
            `discriminative_groups`, as in `fine_tune` (`batch_size` defaults
            to 32 here, and is left out for a dataset, batched already).

    Returns:
        The combined `keras.callbacks.History` of both phases, with
        `history.history["phase"]`.

    Raises:
        TypeError: for a keyword argument a config may not set.

    Example:

    >>> import numpy as np
    >>> from keras_recipes.models.registry import fine_tune_model
    >>> from keras_recipes.models.transfer import transfer_learning_recipe
    >>> model = transfer_learning_recipe((32, 32, 3), 3, weights=None,
    ...                                  base_kwargs={"alpha": 0.35}, seed=0)
    >>> x = np.random.randint(0, 256, (64, 32, 32, 3)).astype("float32")
    >>> y = np.arange(64) % 3
    >>> history = fine_tune_model(model, (x, y), head_epochs=1, epochs=1,
    ...                           unfreeze=10, verbose=0)
    >>> history.history["phase"]
    [1, 2]
    """
    unknown = sorted(set(kwargs) - set(_FINE_TUNE_FIT_KEYS))
    if unknown:
        raise TypeError(f"fine_tune_model() got unexpected keyword arguments {unknown}; "
                        f"it takes {', '.join(_FINE_TUNE_FIT_KEYS)}")
    kwargs = {"batch_size": 32, **kwargs}
    if not isinstance(train_data, (tuple, list)):  # a dataset: batched already
        kwargs["batch_size"] = None
    return fine_tune(model, train_data, validation_data, callbacks=callbacks, verbose=verbose,
                     **kwargs)


def _fine_tune_fit_defaults():
    parameters = inspect.signature(fine_tune).parameters
    defaults = {key: parameters[key].default for key in _FINE_TUNE_FIT_KEYS}
    defaults["batch_size"] = 32  # as the other recipes; fine_tune's None means Keras's 32
    return defaults


def _check_fine_tune_fit(fit):
    """The checks of `fine_tune` that need no model, with its messages."""
    # A config's batch size is a number; fine_tune also takes None (Keras's 32).
    v.check_int("batch_size", fit["batch_size"], min_value=1)
    check_fine_tune_arguments(**{key: fit[key] for key in _FINE_TUNE_FIT_KEYS})


def _fine_tune_phases(fit):
    return [phase for phase, epochs in ((1, fit["head_epochs"]), (2, fit["epochs"])) if epochs]


# --- the registry -------------------------------------------------------------------------

_FIT_DEFAULTS = {"epochs": 30, "batch_size": 32}


def _one_fit(name, build):
    return RecipeSpec(name, build, fit_model, _FIT_DEFAULTS, _check_fit_model)


_RECIPES = {
    "baseline": _one_fit("baseline", build_plain_dnn),
    "default_dnn": _one_fit("default_dnn", build_default_dnn),
    "self_normalizing": _one_fit("self_normalizing", build_self_normalizing_dnn),
    "transfer_learning": RecipeSpec(
        "transfer_learning", transfer_learning_recipe, fine_tune_model,
        _fine_tune_fit_defaults(), _check_fine_tune_fit, model_files=("base",),
        phases=_fine_tune_phases, build_arguments=(build_transfer_model,)),
}


def list_recipes():
    """The names of the registered recipes.

    Returns:
        A sorted list of str.

    Example:

    >>> import keras_recipes
    >>> keras_recipes.list_recipes()
    ['baseline', 'default_dnn', 'self_normalizing', 'transfer_learning']
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
        TypeError: for a name that is not a str.

    Example:

    >>> import keras_recipes
    >>> keras_recipes.get_recipe("default_dnn").__name__
    'build_default_dnn'
    """
    return get_recipe_spec(name).build


def get_recipe_spec(name):
    """The `RecipeSpec` registered under `name`: factory, training function, fit settings.

    Args:
        name: str, a name from `list_recipes()` (case-insensitive).

    Returns:
        A `RecipeSpec`.

    Raises:
        ValueError: for an unknown name, with the closest valid one.
        TypeError: for a name that is not a str.

    Example:

    >>> from keras_recipes.models.registry import get_recipe_spec
    >>> get_recipe_spec("default_dnn").train.__name__
    'fit_model'
    """
    return _RECIPES[v.check_choice("name", name, _RECIPES)]
