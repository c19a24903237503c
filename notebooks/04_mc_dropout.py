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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/keras-recipes/keras-recipes/blob/main/notebooks/04_mc_dropout.ipynb)
#
# # 4. How sure is the model? Monte-Carlo Dropout
#
# A softmax output is not a measure of confidence: a classifier happily gives 99% to an image of a
# class it has never seen. Monte-Carlo Dropout (Gal & Ghahramani, 2016) keeps dropout on at
# prediction time, averages many stochastic predictions, and reads the uncertainty from how much
# they disagree -- with no retraining. This notebook trains a Fashion-MNIST classifier with
# dropout, then uses `keras_recipes.MCDropoutPredictor` to find its most and least certain test
# images, to compare its uncertainty on clothes (in distribution) with handwritten digits (out of
# distribution), and to see whether averaging improved calibration.

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
# `KERAS_RECIPES_FAST=1` (set by the test suite) shrinks the sizes and swaps the real datasets for
# offline random stand-in images (`tfds.testing.mock_data`); nothing else changes. In fast mode
# the "clothes" and the "digits" are the same random noise, so the plots show nothing.

# %% tags=["parameters"]
import contextlib
import os

import tensorflow_datasets as tfds

FAST = os.environ.get("KERAS_RECIPES_FAST") == "1"
SEED = 0
EPOCHS = 2 if FAST else 20
BATCH_SIZE = 32
MAX_TRAIN_SAMPLES = 512 if FAST else None
NUM_SAMPLES = 10 if FAST else 100     # Monte-Carlo samples per image
data_source = (tfds.testing.mock_data(num_examples=700) if FAST  # offline stand-in data
               else contextlib.nullcontext())                     # the real datasets
if FAST:
    import logging

    # tfds.testing.mock_data logs deprecation warnings of tfds's own (through absl).
    logging.getLogger("absl").setLevel(logging.ERROR)
    print("Fast mode (KERAS_RECIPES_FAST=1): random stand-in images, small subsets, few "
          "epochs. The outputs show what each cell prints and draws; the numbers are not "
          "results. Run the notebook (on Colab, say) for those.")

# %% [markdown]
# ## Data: Fashion-MNIST to learn, MNIST digits as the unknown
#
# Both are loaded as raw pixels: the model standardises its inputs itself (a `Normalization`
# layer adapted to the Fashion-MNIST training images), so digits go through exactly the same
# preprocessing as clothes. Only MNIST's test images are used.

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np

import keras_recipes
from keras_recipes import datasets, plots
from keras_recipes.uncertainty import expected_calibration_error, reliability_diagram

keras.utils.set_random_seed(SEED)
with data_source:
    data = datasets.load("fashion_mnist", standardize=False, max_train_samples=MAX_TRAIN_SAMPLES,
                         seed=SEED)
    digits = datasets.load("mnist", standardize=False, max_train_samples=MAX_TRAIN_SAMPLES,
                           seed=SEED)
    class_names = tfds.builder("fashion_mnist").info.features["label"].names
x_ood = digits.x_test
print(f"{len(data.x_train)} training, {len(data.x_test)} test clothes; {len(x_ood)} digits")

# %% [markdown]
# ## A classifier with dropout
#
# The default recipe with `Dropout(0.2)` after each of its three hidden blocks
# (`Dense -> BatchNormalization -> ELU -> Dropout`). Monte-Carlo Dropout needs nothing else: any
# trained model with dropout layers will do.

# %%
model = keras_recipes.build_default_dnn(data.input_shape, data.num_classes, dropout_rate=0.2,
                                        normalization_data=data.x_train, seed=SEED)
history = model.fit(data.x_train, data.y_train, epochs=EPOCHS, batch_size=BATCH_SIZE,
                    validation_data=(data.x_val, data.y_val), verbose=2)
plots.plot_learning_curves(history, "accuracy")
plt.show()

# %% [markdown]
# ## Monte-Carlo predictions
#
# `MCDropoutPredictor` draws `NUM_SAMPLES` predictions per image with only the dropout layers
# random; Batch Normalization stays in inference mode and its statistics are never touched (the
# usual `model(x, training=True)` trick would normalise each batch with its own statistics and
# overwrite them). The layers before the first dropout layer run once per image, the rest is
# sampled in large batches in one compiled function. The result has the averaged probabilities
# (`mean`), their spread (`std`), the predictive entropy (total uncertainty) and the mutual
# information (the part due to the model's own uncertainty: where the dropout samples disagree).

# %%
predictor = keras_recipes.MCDropoutPredictor(model, num_samples=NUM_SAMPLES, seed=SEED)
mc = predictor.predict(data.x_test)
mc_ood = predictor.predict(x_ood)
softmax = model.predict(data.x_test, verbose=0)      # one deterministic pass, dropout off
softmax_ood = model.predict(x_ood, verbose=0)

print(f"test accuracy, one pass:        {np.mean(softmax.argmax(1) == data.y_test):.2%}")
print(f"test accuracy, MC average of {NUM_SAMPLES}: "
      f"{np.mean(mc.predict_classes() == data.y_test):.2%}")

# %% [markdown]
# ## The most and the least certain test images

# %%
order = np.argsort(mc.entropy)
fig, axes = plt.subplots(2, 8, figsize=(14, 4.4))
for row, (title, picks) in enumerate([("most certain", order[:8]),
                                      ("least certain", order[::-1][:8])]):
    for ax, i in zip(axes[row], picks):
        predicted = mc.mean[i].argmax()
        ax.imshow(data.x_test[i][..., 0], cmap="binary")
        ax.set_title(f"{class_names[predicted]} {mc.mean[i, predicted]:.0%}\n"
                     f"H={mc.entropy[i]:.2f}, true: {class_names[data.y_test[i]]}", fontsize=7,
                     color="black" if predicted == data.y_test[i] else "red")
        ax.axis("off")
    axes[row, 0].text(-0.3, 0.5, title, transform=axes[row, 0].transAxes, rotation=90,
                      va="center", ha="right")
plt.show()

# %% [markdown]
# ## Clothes versus digits
#
# Histograms of the uncertainty on the Fashion-MNIST test set and on MNIST digits the model has
# never seen: the entropy of the single deterministic softmax, the Monte-Carlo predictive
# entropy, and the mutual information. The better a measure separates the two histograms, the
# better it flags inputs the model knows nothing about. Below the plot, each measure's detection
# rate: the share of digits above the 95th percentile of the clothes' values (so 5% of the
# clothes would be flagged too).

# %%
def entropy(probabilities):
    p = np.clip(probabilities, 1e-12, 1.0)
    return -np.sum(p * np.log(p), axis=-1)


measures = {
    "softmax entropy (one pass)": (entropy(softmax), entropy(softmax_ood)),
    "MC predictive entropy": (mc.entropy, mc_ood.entropy),
    "MC mutual information": (mc.mutual_information, mc_ood.mutual_information),
}
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for ax, (name, (inside, outside)) in zip(axes, measures.items()):
    bins = np.linspace(0, max(inside.max(), outside.max(), 1e-6), 40)
    ax.hist(inside, bins=bins, alpha=0.6, density=True, label="Fashion-MNIST test (known)")
    ax.hist(outside, bins=bins, alpha=0.6, density=True, label="MNIST digits (unknown)")
    ax.set(title=name, xlabel="nats", ylabel="density")
axes[0].legend()
plt.show()

for name, (inside, outside) in measures.items():
    threshold = np.quantile(inside, 0.95)
    print(f"{name:28s}: flags {np.mean(outside > threshold):.1%} of the digits "
          f"(mean {inside.mean():.3f} on clothes, {outside.mean():.3f} on digits)")

# %% [markdown]
# ## Calibration before and after
#
# A calibrated classifier is right 80% of the time when it says 80%. The reliability diagram
# bins the test predictions by confidence (the probability of the predicted class) and draws the
# accuracy of each bin against the diagonal; the expected calibration error (ECE) is the average
# gap, weighted by the bins' sizes. Does Monte-Carlo averaging bring the bars closer to the
# diagonal?

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
reliability_diagram(data.y_test, softmax).plot(ax=axes[0])
axes[0].set_title("one deterministic pass")
reliability_diagram(data.y_test, mc.mean).plot(ax=axes[1])
axes[1].set_title(f"Monte-Carlo average of {NUM_SAMPLES}")
plt.show()

print(f"ECE, one pass:   {expected_calibration_error(data.y_test, softmax):.4f}")
print(f"ECE, MC average: {expected_calibration_error(data.y_test, mc.mean):.4f}")

# %% [markdown]
# Averaging many dropout samples usually softens the over-confident predictions of a network
# trained to near-zero loss, which lowers the ECE; if the model was already well calibrated,
# there is little to gain. Either way the numbers above, not a rule of thumb, decide. In fast
# mode all of them are meaningless.
