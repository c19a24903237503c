"""Learning-rate and momentum schedules."""

from keras_recipes.schedules.one_cycle import OneCycle, OneCycleMomentum

__all__ = ["OneCycle", "OneCycleMomentum"]
