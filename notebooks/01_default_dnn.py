# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-recipes/keras-recipes/blob/main/notebooks/01_default_dnn.ipynb)
#
# # 1. The default deep network on Fashion-MNIST
#
# Chapter 11 of *Hands-On Machine Learning* ends with a default configuration for a deep
# network: He initialization, ELU, Batch Normalization before each activation, Nadam, and the
# 1cycle schedule with a peak learning rate found by a range test. This notebook trains it on
# Fashion-MNIST against the network most people write first (Glorot initialization, ReLU, Adam at
# a constant learning rate), and looks at what happened: the learning-rate finder's curve, the
# 1cycle schedule that was actually applied, and the learning curves of both.

# %%
# Installs keras-recipes on Colab; elsewhere: pip install "keras-recipes[cli,tfds]".
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "keras-recipes[cli,tfds] @ "
                    "git+https://github.com/keras-recipes/keras-recipes"], check=True)

# %% [markdown]
# ## Parameters
#
# The test suite runs every notebook with `KERAS_RECIPES_FAST=1`: small subsets, few epochs and
# random stand-in images of the real shapes from `tfds.testing.mock_data` (nothing is downloaded).
# This cell is the only place that reads it; every other cell runs the same in both modes. On
# Colab the variable is unset and everything runs full size on the real dataset.

# %% tags=["parameters"]
import contextlib
import os

import tensorflow_datasets as tfds

FAST = os.environ.get("KERAS_RECIPES_FAST") == "1"
SEED = 0
EPOCHS = 2 if FAST else 20
BATCH_SIZE = 32
MAX_TRAIN_SAMPLES = 512 if FAST else None  # None: all 51,000 training images
data_source = (tfds.testing.mock_data(num_examples=700) if FAST  # offline stand-in data
               else contextlib.nullcontext())                     # the real Fashion-MNIST
if FAST:
    import logging

    # tfds.testing.mock_data logs deprecation warnings of tfds's own (through absl).
    logging.getLogger("absl").setLevel(logging.ERROR)
    print("Fast mode (KERAS_RECIPES_FAST=1): random stand-in images, small subsets, few "
          "epochs. The outputs show what each cell prints and draws; the numbers are not "
          "results. Run the notebook (on Colab, say) for those.")

# %% [markdown]
# ## The data
#
# `keras_recipes.datasets.load` reads any TensorFlow Datasets name into train / validation / test
# arrays and standardises each pixel with statistics of the training split only. Fashion-MNIST
# ships train and test splits; 15% of the training images are held out for validation.

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

import keras_recipes
from keras_recipes import datasets, plots

keras.utils.set_random_seed(SEED)
with data_source:
    data = datasets.load("fashion_mnist", max_train_samples=MAX_TRAIN_SAMPLES, seed=SEED)
    class_names = tfds.builder("fashion_mnist").info.features["label"].names

print(f"input shape {data.input_shape}, {data.num_classes} classes; "
      f"{len(data.x_train)} train, {len(data.x_val)} validation, {len(data.x_test)} test images")

fig, axes = plt.subplots(2, 8, figsize=(12, 3.5))
for ax, image, label in zip(axes.flat, data.x_train, data.y_train):
    ax.imshow(image[..., 0], cmap="binary")
    ax.set_title(class_names[label], fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The baseline: Glorot + ReLU + Adam at a constant learning rate
#
# `build_plain_dnn` is a Keras model before any of the chapter's techniques: three hidden
# `Dense(100, activation="relu")` layers with Keras's default Glorot initialization, no Batch
# Normalization, Adam at a constant 1e-3, no early stopping.

# %%
fit_args = dict(epochs=EPOCHS, batch_size=BATCH_SIZE, validation_data=(data.x_val, data.y_val),
                verbose=2)
baseline = keras_recipes.build_plain_dnn(data.input_shape, data.num_classes, seed=SEED)
baseline_history = baseline.fit(data.x_train, data.y_train, **fit_args)

# %% [markdown]
# Even before training, `keras_recipes.diagnose` points at the mismatch the chapter warns about
# (one finding per hidden layer; the first one is shown):

# %%
lint = keras_recipes.diagnose(baseline)
print(lint.findings[0] if lint.findings else lint)

# %% [markdown]
# ## The learning-rate range test
#
# The recipe uses the 1cycle schedule, whose peak learning rate should be the largest one at which
# the loss still falls fast. `find_learning_rate` trains for 100 batches while the learning rate
# grows exponentially from 1e-7 to 10 (stopping early once the loss shoots up), records the
# loss, and suggests a rate from the smoothed curve: the "valley" rule picks the point about
# halfway along the longest stretch where the loss keeps falling. Afterwards the model is exactly
# as before: weights, optimizer state and schedule are restored.

# %%
model = keras_recipes.build_default_dnn(data.input_shape, data.num_classes, seed=SEED)
finder = keras_recipes.find_learning_rate(model, data.x_train, data.y_train,
                                          batch_size=BATCH_SIZE, seed=SEED)
print(finder)
finder.plot()
plt.show()

# %% [markdown]
# ## The recipe: He + BatchNorm + ELU, Nadam on a 1cycle
#
# `build_default_dnn` builds the same three hidden layers of 100 units as
# `Dense(use_bias=False, kernel_initializer="he_normal") -> BatchNormalization -> ELU` and compiles
# it with Nadam on a 1cycle over the learning rate *and* `beta_1`. We pass the suggested learning
# rate as the cycle's peak (`learning_rate="find"` would run the range test inside the first
# `fit` instead). `fit` alone then runs the whole recipe: the cycle is spread over exactly the
# steps of this call, and early stopping on the validation loss (watching the second half of the
# epochs, once the learning rate comes down) restores the best weights.

# %%
model = keras_recipes.build_default_dnn(data.input_shape, data.num_classes,
                                        learning_rate=finder.suggestion, seed=SEED)
history = model.fit(data.x_train, data.y_train, **fit_args)

# %% [markdown]
# ## The 1cycle schedule that was applied
#
# `plots.plot_schedule` evaluates the optimizer's schedules at every step it took, exactly as the
# compiled train step evaluated them: the learning rate warms up to the peak for the first 30% of
# the steps and anneals far below the start, while Nadam's `beta_1` (momentum) moves the other way.

# %%
plots.plot_schedule(model.optimizer)
plt.show()

# %% [markdown]
# ## Learning curves side by side

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
plots.plot_learning_curves(baseline_history, "accuracy", ax=axes[0])
axes[0].set_title("baseline: Glorot + ReLU + Adam (constant rate)")
plots.plot_learning_curves(history, "accuracy", ax=axes[1])
axes[1].set_title("recipe: He + BatchNorm + ELU, Nadam on a 1cycle")
plt.show()

for name, trained in [("baseline", baseline), ("recipe", model)]:
    scores = trained.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    print(f"{name:>8}: test accuracy {scores['accuracy']:.2%}, test loss {scores['loss']:.3f}")

# %% [markdown]
# What to look for: how fast each validation curve rises in the first epochs, where it levels
# off, and how far the training curve pulls away from it (overfitting). The baseline runs at a
# learning rate nobody chose, for every epoch; the recipe runs at the rate the range test found,
# high in the middle of the cycle and annealed at the end, and early stopping hands back the
# weights of its best validation epoch. The test accuracies above are the verdict. (In fast mode
# the images are random noise and every number is meaningless: run the notebook on Colab.)
#
# Next: [02_self_normalizing](02_self_normalizing.ipynb) goes 100 layers deep without Batch
# Normalization.
