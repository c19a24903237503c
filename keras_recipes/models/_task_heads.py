"""What a recipe's task means: the task resolved from `task`, `num_classes` and
`num_outputs`, its output layer (softmax, one sigmoid unit or linear units) and its
loss (with its label smoothing) and metrics."""

from __future__ import annotations

import keras

from keras_recipes import _validation as v
from keras_recipes.losses import SparseCategoricalCrossentropy
from keras_recipes.models._layer_blocks import seeded_initializer

__all__ = [
    "TASKS",
    "output_layer",
    "resolve_task",
    "task_loss",
]

TASKS = ("auto", "multiclass", "binary", "regression")


def resolve_task(task, num_classes, num_outputs):
    """Validates the task arguments; returns the concrete task name."""
    task = v.check_choice("task", task, TASKS)
    if task == "regression":
        if num_classes is not None:
            v.fail("num_classes", num_classes, 'None when task="regression"',
                   hint="Use `num_outputs` for the number of regression targets")
        v.check_int("num_outputs", num_outputs, min_value=1)
        return task
    if num_classes is None:
        v.fail("num_classes", num_classes, "an integer >= 2 for classification",
               hint='For regression pass task="regression"')
    v.check_int("num_classes", num_classes, min_value=2)
    if task == "binary" and num_classes != 2:
        v.fail("num_classes", num_classes, '2 when task="binary"')
    if task == "auto":
        return "binary" if num_classes == 2 else "multiclass"
    return task


def task_loss(task, label_smoothing=0.0):
    """Returns `(loss, metrics)` for a resolved task, checking `label_smoothing`.

    Classes are integer labels: a multi-class task smooths with
    `keras_recipes.losses.SparseCategoricalCrossentropy`, a binary one with
    `keras.losses.BinaryCrossentropy(label_smoothing=...)`; a regression has no
    labels to smooth.
    """
    v.check_number("label_smoothing", label_smoothing, low=0, high=1, high_inclusive=False)
    if task == "regression" and label_smoothing:
        v.fail("label_smoothing", label_smoothing, '0 when task="regression"',
               hint="(label smoothing softens class labels; a regression has none)")
    if task == "multiclass":
        if label_smoothing:
            return SparseCategoricalCrossentropy(label_smoothing=label_smoothing), ["accuracy"]
        return "sparse_categorical_crossentropy", ["accuracy"]
    if task == "binary":
        if label_smoothing:
            return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing), ["accuracy"]
        return "binary_crossentropy", ["accuracy"]
    return "mse", ["mae"]


def output_layer(task, num_classes, num_outputs, *, seed=None):
    """The output layer for a resolved task: softmax, one sigmoid unit, or linear units."""
    initializer = seeded_initializer("glorot_uniform", seed)
    if task == "multiclass":
        return keras.layers.Dense(num_classes, activation="softmax",
                                  kernel_initializer=initializer, name="output")
    if task == "binary":
        return keras.layers.Dense(1, activation="sigmoid", kernel_initializer=initializer,
                                  name="output")
    return keras.layers.Dense(num_outputs, kernel_initializer=initializer, name="output")
