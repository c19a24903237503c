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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-recipes/keras-recipes/blob/main/notebooks/02_self_normalizing.ipynb)
#
# # 2. A self-normalizing network, 100 layers deep
#
# Klambauer et al. (2017) showed that a plain stack of Dense layers with the SELU activation and
# LeCun normal initialization, on standardised inputs, *self-normalises*: each layer's outputs
# keep mean 0 and standard deviation 1, however deep the network, so the gradients neither vanish
# nor explode, without Batch Normalization. This notebook makes that visible by measuring every
# layer of a 100-layer network at initialisation against a ReLU network with Keras's default
# Glorot initialization, trains the self-normalizing network with AlphaDropout, and shows what
# `keras_recipes.diagnose` says when the conditions are broken.

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
# `KERAS_RECIPES_FAST=1` (set by the test suite) shrinks the sizes and swaps the real
# Fashion-MNIST for offline random stand-in images (`tfds.testing.mock_data`); nothing else changes.

# %% tags=["parameters"]
import contextlib
import os

import tensorflow_datasets as tfds

FAST = os.environ.get("KERAS_RECIPES_FAST") == "1"
SEED = 0
DEPTH = 20 if FAST else 100        # hidden layers measured at initialisation
TRAIN_DEPTH = 8 if FAST else 20    # hidden layers of the networks we train
EPOCHS = 2 if FAST else 10
BATCH_SIZE = 32
MAX_TRAIN_SAMPLES = 256 if FAST else None
data_source = (tfds.testing.mock_data(num_examples=400) if FAST  # offline stand-in data
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
# Self-normalisation assumes standardised inputs: `datasets.load` standardises each pixel with
# the training split's mean and standard deviation. We also keep the raw pixels (0 to 255), to
# break that assumption later.

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

import keras_recipes
from keras_recipes import datasets, plots

keras.utils.set_random_seed(SEED)
with data_source:
    data = datasets.load("fashion_mnist", max_train_samples=MAX_TRAIN_SAMPLES, seed=SEED)
    raw = datasets.load("fashion_mnist", max_train_samples=MAX_TRAIN_SAMPLES, seed=SEED,
                        standardize=False)
print(f"{len(data.x_train)} training images; standardised pixels: mean "
      f"{data.x_train.mean():.2f}, std {data.x_train.std():.2f}; raw pixels up to "
      f"{raw.x_train.max():.0f}")

# %% [markdown]
# ## Activations at initialisation, layer by layer
#
# `diagnose(model, x, y)` runs a few batches through the model and measures, among other things,
# the mean and standard deviation of every layer's outputs (`report.layers`). We compare, at the
# same depth and width:
#
# - the self-normalizing network (`build_self_normalizing_dnn`: LeCun normal + SELU);
# - the same with AlphaDropout after every layer, measured in training mode (dropout active);
# - SELU with *plain* Dropout instead: a hand-written Keras model, since the recipe refuses it;
# - a ReLU network with Glorot initialization (`build_plain_dnn`), the Keras default.
#
# `num_steps=0` skips the short training sanity check: we want the network as initialised.

# %%
def hidden_layer_statistics(model):
    """Mean and std of each hidden Dense layer's outputs, as measured by `diagnose`."""
    report = keras_recipes.diagnose(model, data.x_train, data.y_train, batch_size=BATCH_SIZE,
                                    num_steps=0, seed=SEED)
    stats = [s for s in report.layers if s.layer.startswith("hidden_")]
    return np.array([s.mean for s in stats]), np.array([s.std for s in stats]), report


def selu_with_plain_dropout(depth, rate):
    layers = [keras.Input(data.input_shape), keras.layers.Flatten()]
    for i in range(1, depth + 1):
        layers.append(keras.layers.Dense(100, activation="selu", kernel_initializer="lecun_normal",
                                         name=f"hidden_{i}"))
        layers.append(keras.layers.Dropout(rate, name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(data.num_classes, activation="softmax"))
    model = keras.Sequential(layers, name="selu_plain_dropout")
    model.compile(optimizer="nadam", loss="sparse_categorical_crossentropy")
    return model


networks = {
    "SELU + LeCun (self-normalizing)": keras_recipes.build_self_normalizing_dnn(
        data.input_shape, data.num_classes, num_hidden_layers=DEPTH, seed=SEED),
    "SELU + LeCun + AlphaDropout(0.2)": keras_recipes.build_self_normalizing_dnn(
        data.input_shape, data.num_classes, num_hidden_layers=DEPTH, dropout_rate=0.2,
        seed=SEED),
    "SELU + LeCun + plain Dropout(0.2)": selu_with_plain_dropout(DEPTH, 0.2),
    "ReLU + Glorot (Keras default)": keras_recipes.build_plain_dnn(
        data.input_shape, data.num_classes, num_hidden_layers=DEPTH, seed=SEED),
}
statistics = {name: hidden_layer_statistics(model) for name, model in networks.items()}

fig, (ax_mean, ax_std) = plt.subplots(1, 2, figsize=(13, 4.5))
for name, (mean, std, _) in statistics.items():
    layer = np.arange(1, len(mean) + 1)
    ax_mean.plot(layer, mean, label=name)
    ax_std.plot(layer, std, label=name)
ax_mean.set(title="mean of each layer's outputs", xlabel="hidden layer", ylabel="mean")
ax_std.set(title="standard deviation of each layer's outputs", xlabel="hidden layer",
           ylabel="std (log scale)", yscale="log")
ax_mean.axhline(0, color="grey", lw=0.5)
ax_std.axhline(1, color="grey", lw=0.5)
ax_std.legend(fontsize=8)
plt.show()

for name, (mean, std, _) in statistics.items():
    print(f"{name:34s} last hidden layer: mean {mean[-1]:+.3g}, std {std[-1]:.3g}")

# %% [markdown]
# The self-normalizing network stays at mean ~0 and std ~1 from the first layer to the last, and
# AlphaDropout keeps it there: it drops units to SELU's negative saturation value and rescales so
# that mean and variance are preserved. Plain Dropout sets units to 0 and scales the survivors
# up, which inflates the variance at every layer and pushes the network off its fixed point.
# With ReLU and Glorot each layer halves the signal's variance, so after a few dozen layers the
# outputs are vanishingly small and so are the gradients of the lower layers. `diagnose` says so:

# %%
relu_report = statistics["ReLU + Glorot (Keras default)"][2]
for rule in ("vanishing_gradients", "initializer_mismatch"):
    for finding in relu_report.by_rule(rule)[:1]:
        print(finding, "\n")

# %% [markdown]
# ## Training it, with and without AlphaDropout
#
# A hundred layers make the point at initialisation; for training we stack `TRAIN_DEPTH` layers,
# deep by any standard and a fraction of the cost. The recipe compiles with Nadam on a 1cycle;
# `fit` spreads the cycle over its steps and stops early on the validation loss, restoring the
# best weights. AlphaDropout is the regulariser that keeps self-normalisation; whether it helps
# here is for the curves to say.

# %%
runs = {}
for rate in (0.0, 0.1):
    snn = keras_recipes.build_self_normalizing_dnn(
        data.input_shape, data.num_classes, num_hidden_layers=TRAIN_DEPTH, dropout_rate=rate,
        seed=SEED)
    history = snn.fit(data.x_train, data.y_train, epochs=EPOCHS, batch_size=BATCH_SIZE,
                      validation_data=(data.x_val, data.y_val), verbose=2)
    scores = snn.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    runs[f"AlphaDropout({rate})" if rate else "no dropout"] = (history, scores)

fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, (name, (history, scores)) in zip(axes, runs.items()):
    plots.plot_learning_curves(history, "accuracy", ax=ax)
    ax.set_title(f"{TRAIN_DEPTH}-layer SNN, {name}: test accuracy {scores['accuracy']:.2%}")
plt.show()

# %% [markdown]
# ## Breaking the conditions
#
# Self-normalisation holds only for standardised inputs, LeCun normal initialization, SELU, a
# plain stack of Dense layers, no Batch Normalization, no L1/L2 and AlphaDropout rather than
# Dropout. The recipe refuses each violation and says why:

# %%
for wrong in ({"batch_norm": True}, {"dropout": "standard"}, {"kernel_initializer": "he_normal"}):
    try:
        keras_recipes.build_self_normalizing_dnn(data.input_shape, data.num_classes, **wrong)
    except ValueError as error:
        print(f"{wrong}:\n  {error}\n")

# %% [markdown]
# A network written by hand has no such guard. Here is one that breaks several conditions at
# once: Glorot initialization, plain Dropout, an L2 penalty, Batch Normalization, and raw pixel
# values as inputs. `diagnose(model)` alone lints the architecture; with data it also measures
# the inputs and the activations. One finding per rule is shown, each with why it matters and the
# fix:

# %%
broken_layers = [keras.Input(data.input_shape), keras.layers.Flatten()]
for i in range(1, 11):
    broken_layers += [
        keras.layers.Dense(100, activation="selu", kernel_regularizer=keras.regularizers.L2(1e-4),
                           name=f"hidden_{i}"),             # Glorot uniform by default
        keras.layers.BatchNormalization(name=f"batch_norm_{i}"),
        keras.layers.Dropout(0.2, name=f"dropout_{i}"),
    ]
broken_layers.append(keras.layers.Dense(data.num_classes, activation="softmax", name="output"))
broken = keras.Sequential(broken_layers, name="broken_selu")
broken.compile(optimizer="nadam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

report = keras_recipes.diagnose(broken, raw.x_train, raw.y_train, batch_size=BATCH_SIZE,
                                seed=SEED)
print(repr(report), "\n")
for rule in sorted(report.rules):
    print(report.by_rule(rule)[0], "\n")

# %% [markdown]
# Each fix points back to the recipe: `build_self_normalizing_dnn` on standardised inputs (or with
# `normalization_data=raw.x_train`, which puts a `Normalization` layer adapted to the training
# pixels in front of the network). The report of the recipe is clean:

# %%
fixed = keras_recipes.build_self_normalizing_dnn(
    raw.input_shape, raw.num_classes, num_hidden_layers=10, dropout_rate=0.2,
    normalization_data=raw.x_train, seed=SEED)
print(keras_recipes.diagnose(fixed, raw.x_train, raw.y_train, batch_size=BATCH_SIZE, seed=SEED,
                             num_steps=0))
