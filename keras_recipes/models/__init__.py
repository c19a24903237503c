"""The architectures: factories that build networks and compile them with a recipe, the
recipe applied to a model of yours, and the registry of named recipes."""

from keras_recipes.models.compile_recipe import compile_recipe
from keras_recipes.models.default_dnn import build_default_dnn
from keras_recipes.models.plain_dnn import build_plain_dnn
from keras_recipes.models.self_normalizing import build_self_normalizing_dnn
from keras_recipes.training import RecipeModel, RecipeWrapper

__all__ = ["RecipeModel", "RecipeWrapper", "build_default_dnn", "build_plain_dnn",
           "build_self_normalizing_dnn", "compile_recipe"]
