"""keras-recipes: ready-made, tested Keras 3 recipes for training deep networks."""

__version__ = "0.1.0"

from keras_recipes import callbacks, datasets, optimizers, schedules  # noqa: E402
from keras_recipes.diagnostics import DiagnosisReport, diagnose  # noqa: E402
from keras_recipes.lr_finder import LRFinderResult, find_learning_rate  # noqa: E402
from keras_recipes.models import (  # noqa: E402
    RecipeModel,
    build_default_dnn,
    build_plain_dnn,
    build_self_normalizing_dnn,
)
from keras_recipes.models.registry import get_recipe, list_recipes  # noqa: E402

__all__ = [
    "__version__",
    "callbacks",
    "datasets",
    "optimizers",
    "schedules",
    "RecipeModel",
    "build_default_dnn",
    "build_plain_dnn",
    "build_self_normalizing_dnn",
    "get_recipe",
    "list_recipes",
    "diagnose",
    "DiagnosisReport",
    "find_learning_rate",
    "LRFinderResult",
]
