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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-recipes/keras-recipes/blob/main/notebooks/06_your_own_model.ipynb)
#
# # 6. The recipe on a model of your own
#
# Most Keras users arrive with a model of their own. `keras_recipes.compile_recipe` applies the
# chapter's recipe to it -- Nadam on the 1cycle over the learning rate *and* momentum, early
# stopping that waits for the annealing and restores the best weights, the NaN stop, the LR range
# finder -- so that a plain `model.fit(...)` runs all of it, as fastai's `fit_one_cycle` does. This
# notebook writes a small CNN for Fashion-MNIST, finds its learning rate, trains it with the
# recipe, plots the schedule that was applied, asks `diagnose` about it, and reads its uncertainty
# with Monte-Carlo Dropout.

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
# The test suite runs every notebook with `KERAS_RECIPES_FAST=1`: a few hundred random stand-in
# images of the real shape from `tfds.testing.mock_data` (nothing is downloaded), fewer filters,
# few epochs. This cell is the only place that reads it.

# %% tags=["parameters"]
import contextlib
import os

import tensorflow_datasets as tfds

FAST = os.environ.get("KERAS_RECIPES_FAST") == "1"
SEED = 0
EPOCHS = 2 if FAST else 15
BATCH_SIZE = 64
FILTERS = 4 if FAST else 32
MAX_TRAIN_SAMPLES = 512 if FAST else None  # None: all 51,000 training images
NUM_SAMPLES = 10 if FAST else 50           # Monte-Carlo samples per image
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
# Fashion-MNIST as 28x28x1 images, each pixel standardised with statistics of the training split.

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

import keras_recipes
from keras_recipes import datasets, plots

keras.utils.set_random_seed(SEED)
with data_source:
    data = datasets.load("fashion_mnist", max_train_samples=MAX_TRAIN_SAMPLES, seed=SEED)
print(f"input shape {data.input_shape}, {data.num_classes} classes; "
      f"{len(data.x_train)} train, {len(data.x_val)} validation, {len(data.x_test)} test images")

# %% [markdown]
# ## Your model: a small CNN
#
# Any Keras model will do: Sequential, functional or subclassed. This one is functional: two
# `Conv2D -> BatchNormalization -> ReLU` blocks with pooling, then dropout before the softmax
# (the dropout is what Monte-Carlo Dropout samples later). Nothing in it comes from keras-recipes.

# %%
def small_cnn(input_shape, num_classes, filters):
    inputs = keras.Input(input_shape)
    x = inputs
    for i in (1, 2):
        x = keras.layers.Conv2D(filters * i, 3, padding="same", use_bias=False,
                                kernel_initializer="he_normal")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="small_cnn")


# %% [markdown]
# ## The learning-rate range test
#
# `compile_recipe` compiles your model with the recipe and returns a model sharing its layers and
# weights (for a functional model, a `RecipeModel` on the same graph, as the factories return).
# `find_learning_rate` then ramps the learning rate over 100 batches and suggests the 1cycle's
# peak; the model is restored afterwards. (`learning_rate="find"` would do this inside the first
# `fit` instead.)

# %%
model = keras_recipes.compile_recipe(small_cnn(data.input_shape, data.num_classes, FILTERS),
                                     loss="sparse_categorical_crossentropy",
                                     metrics=["accuracy"])
finder = keras_recipes.find_learning_rate(model, data.x_train, data.y_train,
                                          batch_size=BATCH_SIZE, seed=SEED)
print(finder)
finder.plot()
plt.show()

# %% [markdown]
# ## Training with the recipe: a plain `fit`
#
# A fresh CNN compiled with the suggested peak. `fit` alone stretches the 1cycle over exactly its
# steps, watches the validation loss from halfway (once the learning rate comes down), restores
# the best weights and stops on a NaN loss.

# %%
cnn = small_cnn(data.input_shape, data.num_classes, FILTERS)
model = keras_recipes.compile_recipe(cnn, loss="sparse_categorical_crossentropy",
                                     metrics=["accuracy"], learning_rate=finder.suggestion)
history = model.fit(data.x_train, data.y_train, epochs=EPOCHS, batch_size=BATCH_SIZE,
                    validation_data=(data.x_val, data.y_val), verbose=2)
print(f"test accuracy: {model.evaluate(data.x_test, data.y_test, verbose=0)[1]:.2%}")
plots.plot_learning_curves(history, "accuracy")
plt.show()

# %% [markdown]
# ## The schedule that was applied
#
# The learning rate warms up to the peak for the first 30% of the steps and anneals far below the
# start, while Nadam's `beta_1` (momentum) moves the other way -- both evaluated inside the
# compiled train step.

# %%
plots.plot_schedule(model.optimizer)
plt.show()

# %% [markdown]
# ## What `diagnose` says about it
#
# The lint of the chapter's cautions, and measured statistics on a batch of training data.

# %%
report = keras_recipes.diagnose(model, data.x_train, data.y_train, batch_size=BATCH_SIZE)
print(report)

# %% [markdown]
# ## How sure is it? Monte-Carlo Dropout
#
# `MCDropoutPredictor` samples the dropout layer only (Batch Normalization stays in inference
# mode). The most uncertain test images are where the samples disagree most.

# %%
predictor = keras_recipes.MCDropoutPredictor(model, num_samples=NUM_SAMPLES, seed=SEED)
mc = predictor.predict(data.x_test)
print(f"test accuracy, MC average of {NUM_SAMPLES}: "
      f"{np.mean(mc.predict_classes() == data.y_test):.2%}")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(mc.entropy[mc.predict_classes() == data.y_test], bins=30, alpha=0.6, label="right")
ax.hist(mc.entropy[mc.predict_classes() != data.y_test], bins=30, alpha=0.6, label="wrong")
ax.set_xlabel("MC predictive entropy")
ax.legend()
plt.show()

# %% [markdown]
# ## Saving
#
# The recipe's model saves and reloads without `custom_objects`, the optimizer's state and the
# 1cycle's position included; `cnn` itself holds the trained weights too.

# %%
model.save("small_cnn.keras")
reloaded = keras.models.load_model("small_cnn.keras")
print(type(reloaded).__name__, int(reloaded.optimizer.iterations), "steps")
