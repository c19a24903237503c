"""Callbacks of keras-recipes: anything that must act between epochs of `fit`."""

from keras_recipes.callbacks.training_monitor import TrainingMonitor, TrainingMonitorWarning

__all__ = ["TrainingMonitor", "TrainingMonitorWarning"]
