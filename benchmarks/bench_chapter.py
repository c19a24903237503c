"""The chapter's exercise on MNIST: 20 hidden layers of 100 units, technique by technique.

Variants: plain (Glorot + ReLU + Adam at a constant rate), He + ELU + Nadam,
+ BatchNorm (`build_default_dnn` without 1cycle), + 1cycle (`build_default_dnn`),
SELU (`build_self_normalizing_dnn`), + AlphaDropout, + MC Dropout (the AlphaDropout
model predicted with `MCDropoutPredictor`). The book's CIFAR-10 figures (plain 47.6%,
SELU 47.9%, AlphaDropout 48.9%, 1cycle 52.0%, BatchNorm 54.0%) give the ordering the
table is compared with.

Usage: python benchmarks/bench_chapter.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS_DIR, header, load_mnist, write_section  # noqa: E402

import keras_recipes  # noqa: E402

BOOK_CIFAR10 = {"plain": 47.6, "SELU": 47.9, "+ AlphaDropout": 48.9, "+ 1cycle": 52.0,
                "+ BatchNorm": 54.0}


def variants(layers, x_train):
    shape = x_train.shape[1:]
    common = dict(num_hidden_layers=layers, units=100, seed=0)
    return {
        "plain": lambda: keras_recipes.build_plain_dnn(shape, 10, learning_rate=1e-3, **common),
        "He + ELU + Nadam": lambda: keras_recipes.build_default_dnn(
            shape, 10, normalization=None, schedule="constant", learning_rate=1e-3,
            early_stopping_patience=None, **common),
        "+ BatchNorm": lambda: keras_recipes.build_default_dnn(
            shape, 10, schedule="constant", learning_rate=1e-3, early_stopping_patience=None,
            **common),
        "+ 1cycle": lambda: keras_recipes.build_default_dnn(
            shape, 10, early_stopping_patience=None, **common),
        "SELU": lambda: keras_recipes.build_self_normalizing_dnn(
            shape, 10, normalization_data=x_train, early_stopping_patience=None, **common),
        "+ AlphaDropout": lambda: keras_recipes.build_self_normalizing_dnn(
            shape, 10, normalization_data=x_train, dropout_rate=0.1,
            early_stopping_patience=None, **common),
    }


def run(name, build, data, epochs):
    (x, y), (x_val, y_val), (x_test, y_test) = data
    keras.utils.set_random_seed(0)
    model = build()
    started = time.perf_counter()
    history = model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=32,
                        verbose=0)
    seconds = time.perf_counter() - started
    val = history.history["val_accuracy"]
    test = model.evaluate(x_test, y_test, verbose=0)[1]
    return model, {"name": name, "val": val, "best_val": max(val),
                   "best_epoch": int(np.argmax(val)) + 1, "test": test, "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS_DIR / "chapter.md",
                        help="where to write the markdown section")
    args = parser.parse_args(argv)
    (x, y), (x_val, y_val), (x_test, y_test) = load_mnist()
    x, x_val, x_test = x / 255.0, x_val / 255.0, x_test / 255.0
    layers, epochs, samples = (20, 10, 100) if not args.quick else (1, 1, 20)
    if args.quick:
        x, y, x_val, y_val = x[:256], y[:256], x_val[:64], y_val[:64]
        x_test, y_test = x_test[:64], y_test[:64]
    data = ((x, y), (x_val, y_val), (x_test, y_test))

    rows, models = [], {}
    for name, build in variants(layers, x).items():
        models[name], row = run(name, build, data, epochs)
        rows.append(row)
        print(name, {k: v for k, v in row.items() if k != "val"}, flush=True)
    from keras_recipes.uncertainty import MCDropoutPredictor

    started = time.perf_counter()
    predictor = MCDropoutPredictor(models["+ AlphaDropout"], num_samples=samples, seed=0)
    mc_test = float(np.mean(predictor.predict_classes(x_test) == y_test))
    rows.append({"name": "+ MC Dropout", "val": None, "best_val": None, "best_epoch": None,
                 "test": mc_test, "seconds": time.perf_counter() - started})

    plain_best = rows[0]["best_val"]
    command = "python benchmarks/bench_chapter.py" + (" --quick" if args.quick else "")
    lines = header("Quality: the chapter's exercise on MNIST", command)
    lines += [f"{layers} hidden layers of 100 units, {len(x)} training / {len(x_val)} "
              f"validation / {len(x_test)} test images (pixels / 255), batch 32, {epochs} "
              "epochs, no early stopping, seed 0. MC Dropout averages "
              f"{samples} samples of the AlphaDropout model (time = prediction only).", "",
              "| variant | best val acc | best epoch | epochs to plain's best | test acc | "
              "time s |", "|---|---|---|---|---|---|"]
    for row in rows:
        if row["val"] is None:
            reach = "-"
        else:
            hits = [i + 1 for i, value in enumerate(row["val"]) if value >= plain_best]
            reach = str(hits[0]) if hits else f"not in {epochs}"
        best_val = "-" if row["best_val"] is None else f"{row['best_val']:.4f}"
        lines.append(f"| {row['name']} | {best_val} | {row['best_epoch'] or '-'} | {reach} | "
                     f"{row['test']:.4f} | {row['seconds']:.0f} |")
    order = sorted(BOOK_CIFAR10, key=BOOK_CIFAR10.get)
    ours = {row["name"]: row["test"] for row in rows}
    our_order = sorted(order, key=ours.get)
    same = our_order == order
    lines += ["", "Book (CIFAR-10) ordering, worst to best: " + " < ".join(
        f"{n} ({BOOK_CIFAR10[n]}%)" for n in order) + ".",
        "Ours (MNIST test accuracy), worst to best: " + " < ".join(
        f"{n} ({100 * ours[n]:.2f}%)" for n in our_order) + ".",
        f"The book's ordering {'holds' if same else 'does not hold'} on MNIST."]
    write_section(args.output, lines)


if __name__ == "__main__":
    main()
