"""The recipes: factories that build and compile ready-to-fit models."""

from keras_recipes.models._recipe_model import RecipeModel
from keras_recipes.models.default_dnn import build_default_dnn
from keras_recipes.models.plain_dnn import build_plain_dnn
from keras_recipes.models.self_normalizing import build_self_normalizing_dnn

__all__ = ["RecipeModel", "build_default_dnn", "build_plain_dnn", "build_self_normalizing_dnn"]
