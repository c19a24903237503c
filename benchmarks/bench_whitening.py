"""Input whitening: ZCA and PCA against standardisation on the bundled digits.

    .venv/bin/python benchmarks/bench_whitening.py [--quick] [--seeds N]

The notes' section 3: decorrelating the input features (whitening) rather than only
centring and scaling each one. `datasets.load("digits", whiten=...)` computes the
statistics on the training split only and applies them to every split.

Contenders, run one after the other within each seed (same split, same initial weights):

- standardisation: `datasets.load("digits")` (the default);
- ZCA: `whiten="zca"` (features keep their layout);
- PCA: `whiten="pca"` (features become principal components).

Each trains `build_default_dnn(..., seed=seed)` (3 x 100, He + BatchNorm + ELU, Nadam on
a 1cycle peaking at 1e-2, early stopping with patience 10) for 30 epochs, batch 32, on
the digits' 1,222 training images, validated on 216, tested on 359; the split seed is the
run's seed. Reported per contender: test accuracy (median and min-max over the seeds),
the best validation accuracy, epochs run, training seconds. Writes the markdown section
to `benchmarks/results/whitening.md`.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, write_section  # noqa: E402

import keras_recipes  # noqa: E402
from keras_recipes import datasets  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "whitening.md"
CONTENDERS = {"standardisation": {}, "ZCA": {"whiten": "zca"}, "PCA": {"whiten": "pca"}}


def run(settings, seed, epochs):
    """Trains the default DNN on digits loaded with `settings`; returns its figures."""
    data = datasets.load("digits", seed=seed, **settings)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = keras_recipes.build_default_dnn(data.input_shape, data.num_classes, seed=seed)
    started = time.perf_counter()
    history = model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32,
                        validation_data=(data.x_val, data.y_val), verbose=0)
    seconds = time.perf_counter() - started
    test = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
    return {"test": test["accuracy"], "val": max(history.history["val_accuracy"]),
            "epochs": len(history.history["loss"]), "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 2 epochs")
    parser.add_argument("--seeds", type=int, default=None, help="default 5 (quick: 1)")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    seeds = range(args.seeds or (1 if args.quick else 5))
    epochs = 2 if args.quick else 30
    results = {name: [] for name in CONTENDERS}
    for seed in seeds:
        for name, settings in CONTENDERS.items():
            results[name].append(run(settings, seed, epochs))
            print(f"seed {seed} {name}: {results[name][-1]}", flush=True)

    command = "python benchmarks/bench_whitening.py" + (" --quick" if args.quick else "") + (
        f" --seeds {args.seeds}" if args.seeds else "")
    lines = header("Input whitening (`datasets.load(whiten=...)`) on digits", command)
    lines += [
        f"`build_default_dnn` defaults, {epochs} epochs max, batch 32, seeds "
        f"{', '.join(map(str, seeds))} (split and weights). Test accuracy on the 359 test "
        "digits: median (min-max) over the seeds.", "",
        "| inputs | test accuracy | best val accuracy | epochs run | train s |",
        "|---|---|---|---|---|"]
    for name, rows in results.items():
        tests = [row["test"] for row in rows]
        lines.append(
            f"| {name} | {statistics.median(tests):.4f} ({min(tests):.4f}-{max(tests):.4f}) | "
            f"{statistics.median(row['val'] for row in rows):.4f} | "
            f"{statistics.median(row['epochs'] for row in rows):.0f} | "
            f"{statistics.median(row['seconds'] for row in rows):.1f} |")
    best = max(results, key=lambda name: statistics.median(r["test"] for r in results[name]))
    lines += ["", f"- Best median test accuracy: {best}."]
    write_section(args.output, lines)


if __name__ == "__main__":
    main()
