"""The recipes: factories that build and compile ready-to-fit models, and the recipe
for a model of your own."""

from keras_recipes.models._recipe_model import RecipeModel
from keras_recipes.models.compile_recipe import RecipeWrapper, compile_recipe
from keras_recipes.models.default_dnn import build_default_dnn
from keras_recipes.models.plain_dnn import build_plain_dnn
from keras_recipes.models.self_normalizing import build_self_normalizing_dnn

__all__ = ["RecipeModel", "RecipeWrapper", "build_default_dnn", "build_plain_dnn",
           "build_self_normalizing_dnn", "compile_recipe"]
