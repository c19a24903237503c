"""Keras optimizers whose momentum / `beta_1` can follow a schedule, and what an
optimizer follows."""

from keras_recipes.optimizers.introspection import learning_rate_schedule
from keras_recipes.optimizers.scheduled import (
    SGD,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Nadam,
    RMSprop,
)

__all__ = ["SGD", "Adagrad", "Adam", "Adamax", "AdamW", "Nadam", "RMSprop",
           "learning_rate_schedule"]
