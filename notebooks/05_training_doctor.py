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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-recipes/keras-recipes/blob/main/notebooks/05_training_doctor.ipynb)
#
# # 5. The training doctor: three broken networks and their fixes
#
# A network that does not train rarely says why. This notebook breaks a small Fashion-MNIST
# classifier in three classic ways from chapter 11 -- dead ReLUs, exploding gradients and
# unscaled inputs -- and lets the package explain each one: `keras_recipes.diagnose` before
# training (a lint of the architecture plus measured activation and gradient statistics, each
# finding with why it matters and the fix), and the `TrainingMonitor` callback during training
# (the same statistics per epoch in the history, and a warning as soon as a layer dies or the
# gradients explode). Then we apply the fix the report names and watch it work.

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
EPOCHS = 2 if FAST else 10
BATCH_SIZE = 32
MAX_TRAIN_SAMPLES = 256 if FAST else 20_000
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
# ## The data, standardised and raw

# %%
import warnings

import keras
import matplotlib.pyplot as plt
import numpy as np

import keras_recipes
from keras_recipes import datasets
from keras_recipes.callbacks import TrainingMonitor, TrainingMonitorWarning

keras.utils.set_random_seed(SEED)
with data_source:
    data = datasets.load("fashion_mnist", max_train_samples=MAX_TRAIN_SAMPLES, seed=SEED)
    raw = datasets.load("fashion_mnist", max_train_samples=MAX_TRAIN_SAMPLES, seed=SEED,
                        standardize=False)
print(f"{len(data.x_train)} training images; raw pixels in [{raw.x_train.min():.0f}, "
      f"{raw.x_train.max():.0f}], standardised ones with mean {data.x_train.mean():.2f} and "
      f"std {data.x_train.std():.2f}")

# %% [markdown]
# ## One small network, three ways to break it
#
# Five hidden `Dense(100) -> ReLU` blocks with He initialization, Adam at 1e-3: a sound network.
# Each broken version changes one thing; each fix changes one thing back (or adds what the
# report asks for).

# %%
def network(name, *, kernel_initializer="he_normal", bias_initializer="zeros",
            batch_norm=False, rescale=None):
    inputs = keras.Input(data.input_shape)
    x = keras.layers.Flatten()(inputs)
    if rescale is not None:
        x = keras.layers.Rescaling(rescale, name="rescaling")(x)
    for i in range(1, 6):
        x = keras.layers.Dense(100, name=f"hidden_{i}", kernel_initializer=kernel_initializer,
                               bias_initializer=bias_initializer)(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x)
        x = keras.layers.ReLU(name=f"relu_{i}")(x)
    outputs = keras.layers.Dense(data.num_classes, activation="softmax", name="output")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def train(model, splits):
    """Trains with a TrainingMonitor; returns the history and the monitor's warnings."""
    monitor = TrainingMonitor(splits.x_train[:256], splits.y_train[:256], seed=SEED)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingMonitorWarning)
        history = model.fit(splits.x_train, splits.y_train, epochs=EPOCHS,
                            batch_size=BATCH_SIZE, callbacks=[monitor], verbose=0,
                            validation_data=(splits.x_val, splits.y_val))
    messages = [str(w.message) for w in caught if issubclass(w.category, TrainingMonitorWarning)]
    return history, messages


def compare(title, runs, monitor_key, monitor_label, log=False):
    """Validation accuracy and one TrainingMonitor statistic, per epoch, broken vs fixed."""
    fig, (ax_acc, ax_mon) = plt.subplots(1, 2, figsize=(12, 3.8))
    for label, (history, _) in runs.items():
        epochs = np.arange(1, len(history.history["val_accuracy"]) + 1)
        ax_acc.plot(epochs, history.history["val_accuracy"], marker="o", label=label)
        ax_mon.plot(epochs, history.history[monitor_key], marker="o", label=label)
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1))
    ax_mon.set(xlabel="epoch", ylabel=monitor_label, yscale="log" if log else "linear")
    ax_acc.legend()
    fig.suptitle(title)
    plt.show()
    for label, (history, messages) in runs.items():
        print(f"{label}: final validation accuracy {history.history['val_accuracy'][-1]:.2%}; "
              f"{len(messages)} monitor warning(s)" + (f", first: {messages[0]}" if messages
                                                       else ""))

# %% [markdown]
# ## 1. Dead ReLUs
#
# A ReLU unit whose input is negative for every sample outputs 0, gets no gradient and never
# recovers. Large updates at a too-high learning rate push biases there; here we start every
# bias at -5 to get there at once.

# %%
dead = network("dead_relus", bias_initializer=keras.initializers.Constant(-5.0))
report = keras_recipes.diagnose(dead, data.x_train, data.y_train, batch_size=BATCH_SIZE,
                                seed=SEED)
print(report)

# %% [markdown]
# The hidden layers are dead, and the loss barely moves even on the few batches the diagnosis
# trained on. Of the fixes the report lists, Batch Normalization before the activation repairs
# this network as it is: it re-centres each unit's input on every batch, whatever the bias. (Its
# diagnosis adds an info: with BatchNorm right after it, a Dense layer's bias is cancelled anyway,
# so `use_bias=False` would save the parameters.)

# %%
print("fix:", report.by_rule("dying_relu")[0].fix)
fixed = network("dead_relus_fixed", bias_initializer=keras.initializers.Constant(-5.0),
                batch_norm=True)
print(repr(keras_recipes.diagnose(fixed, data.x_train, data.y_train, batch_size=BATCH_SIZE,
                                  seed=SEED)))
compare("dead ReLUs", {"biases at -5": train(dead, data),
                       "+ BatchNormalization": train(fixed, data)},
        "monitor_max_dead_fraction", "largest fraction of dead units in a layer")

# %% [markdown]
# ## 2. Exploding gradients
#
# Weights drawn with a standard deviation of 1 (instead of He's sqrt(2 / fan_in): 0.05 for the
# first layer, 0.14 for the others) multiply the signal at every layer; the gradients grow just as
# fast on the way back.

# %%
exploding = network("exploding", kernel_initializer=keras.initializers.RandomNormal(stddev=1.0))
report = keras_recipes.diagnose(exploding, data.x_train, data.y_train, batch_size=BATCH_SIZE,
                                seed=SEED)
print(report)

# %% [markdown]
# The `std` column grows layer after layer and the gradient norms are huge. The report's first
# fix is the matched initializer:

# %%
print("fix:", report.by_rule("exploding_gradients")[0].fix)
fixed = network("exploding_fixed", kernel_initializer="he_normal")
print(repr(keras_recipes.diagnose(fixed, data.x_train, data.y_train, batch_size=BATCH_SIZE,
                                  seed=SEED)))
compare("exploding gradients", {"RandomNormal(stddev=1)": train(exploding, data),
                                "He initialization": train(fixed, data)},
        "monitor_max_gradient_norm", "largest gradient norm of a layer", log=True)

# %% [markdown]
# ## 3. Unscaled inputs
#
# The same sound network, fed raw pixel values from 0 to 255: initializations assume inputs with
# mean 0 and standard deviation 1, so the first layer's outputs are a hundred times too large.

# %%
unscaled = network("unscaled_inputs")
report = keras_recipes.diagnose(unscaled, raw.x_train, raw.y_train, batch_size=BATCH_SIZE,
                                seed=SEED)
print(report)

# %%
print("fix:", report.by_rule("unnormalized_inputs")[0].fix)
fixed = network("unscaled_inputs_fixed", rescale=1 / 255)
print(repr(keras_recipes.diagnose(fixed, raw.x_train, raw.y_train, batch_size=BATCH_SIZE,
                                  seed=SEED)))
compare("unscaled inputs", {"raw pixels": train(unscaled, raw),
                            "+ Rescaling(1/255)": train(fixed, raw)},
        "monitor_max_gradient_norm", "largest gradient norm of a layer", log=True)

# %% [markdown]
# ## Or start from a recipe
#
# `build_default_dnn` avoids all three by construction (He initialization, Batch Normalization
# before each ELU, and `normalization_data=` puts a `Normalization` layer adapted to the training
# pixels in front), and its diagnosis is clean even on raw pixels:

# %%
recipe = keras_recipes.build_default_dnn(raw.input_shape, raw.num_classes,
                                         normalization_data=raw.x_train, seed=SEED)
print(repr(keras_recipes.diagnose(recipe, raw.x_train, raw.y_train, batch_size=BATCH_SIZE,
                                  seed=SEED)))
