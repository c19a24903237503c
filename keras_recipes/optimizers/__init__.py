"""Keras optimizers whose momentum / `beta_1` can follow a schedule, and what an
optimizer follows."""

from keras_recipes.optimizers.introspection import learning_rate_schedule
from keras_recipes.optimizers.scheduled import SGD, Adam, AdamW, Nadam

__all__ = ["SGD", "Adam", "AdamW", "Nadam", "learning_rate_schedule"]
