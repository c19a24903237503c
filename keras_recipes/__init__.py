"""keras-recipes: ready-made, tested Keras 3 recipes for training deep networks."""

__version__ = "0.1.0"

from keras_recipes import optimizers, schedules  # noqa: E402

__all__ = ["__version__", "optimizers", "schedules"]
