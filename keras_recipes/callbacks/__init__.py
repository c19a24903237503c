"""Callbacks of keras-recipes: anything that must act between epochs of `fit`."""

from keras_recipes.callbacks.backup import AtomicBackupAndRestore
from keras_recipes.callbacks.epoch_tensorboard import EpochTensorBoard
from keras_recipes.callbacks.resumable import (
    Resumable,
    ResumableEarlyStopping,
    ResumableReduceLROnPlateau,
)
from keras_recipes.callbacks.stop_on_nan import StopOnNaN
from keras_recipes.callbacks.training_monitor import TrainingMonitor, TrainingMonitorWarning

__all__ = ["AtomicBackupAndRestore", "EpochTensorBoard", "Resumable", "ResumableEarlyStopping",
           "ResumableReduceLROnPlateau", "StopOnNaN", "TrainingMonitor", "TrainingMonitorWarning"]
