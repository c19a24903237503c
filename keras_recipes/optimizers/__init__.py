"""Keras optimizers whose momentum / `beta_1` can follow a schedule."""

from keras_recipes.optimizers.scheduled import SGD, Adam, AdamW, Nadam

__all__ = ["SGD", "Adam", "AdamW", "Nadam"]
