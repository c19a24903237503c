"""The recipe: every training option as one validated value (`Recipe`), the optimizer
and schedule it makes, the callbacks of each `fit` and the state they keep.

- `_recipe`: `Recipe`, the options checked once, `replace`, saving;
- `_optimizers`: optimizer names, schedules, the optimizer with its 1cycle;
- `_execution`: the distribution's scope and the execution defaults;
- `_fit_callbacks`: the callbacks of one `fit`, in order;
- `_state`: `RecipeState`, the one owner of what must survive a restart.
"""

from keras_recipes.recipe._recipe import TRAINING_OPTIONS, Recipe
from keras_recipes.recipe._state import RecipeState

__all__ = ["TRAINING_OPTIONS", "Recipe", "RecipeState"]
