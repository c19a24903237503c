"""Training with a recipe: the model classes whose `fit` runs it, compiling a model with
it, and `fine_tune`'s two phases."""

from keras_recipes.training.fine_tune import fine_tune
from keras_recipes.training.recipe_model import RecipeModel
from keras_recipes.training.recipe_wrapper import RecipeWrapper

__all__ = ["RecipeModel", "RecipeWrapper", "fine_tune"]
