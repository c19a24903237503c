"""Speed of the recipes against plain Keras, measured side by side.

- 1cycle overhead: an epoch with the in-graph 1cycle (learning rate and momentum)
  against the same model at a constant rate, and against the chapter notebook's
  per-batch callback 1cycle (which can set the learning rate only).
- A new `fit` call: the extra cost of its first epoch (over a steady epoch) with
  the recipe's 1cycle, which each `fit` stretches over its own steps, against a
  constant rate; and, as a reference, the 1cycle with its train function rebuilt
  at every `fit` (what each `fit` paid before the span became optimizer state).
- Recipe `fit` throughput against the same model compiled with plain Keras
  defaults (`compile(optimizer, loss, metrics)`, batch 32).
- `import keras_recipes` against `import keras` alone (fresh interpreters).

Usage: python benchmarks/bench_speed.py [--quick] [--only SECTION ...]
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS_DIR, header, interleaved, load_mnist, ratio_row, write_section  # noqa: E402

import keras_recipes  # noqa: E402
from keras_recipes.schedules import OneCycle  # noqa: E402

SECTIONS = ("overhead", "fresh_fit", "throughput", "import")


class PerBatchOneCycle(keras.callbacks.Callback):
    """The chapter notebook's 1cycle: a Python callback setting the rate every batch."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule, self.step = schedule, 0

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = float(self.schedule(self.step))
        self.step += 1


def _epoch_timer(model, x, y, **fit):
    def run():
        started = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, **fit)
        return time.perf_counter() - started
    return run


def one_cycle_overhead(x, y, repeats, layers):
    steps = math.ceil(len(x) / 32)

    def recipe(**kwargs):
        model = keras_recipes.build_default_dnn(x.shape[1:], 10, num_hidden_layers=layers,
                                                seed=0, **kwargs)
        model.fit(x[:256], y[:256], epochs=1, batch_size=32, verbose=0)  # trace once
        return model

    in_graph = recipe(total_steps=100 * steps)
    constant = recipe(one_cycle=False)
    callback = recipe(one_cycle=False)
    callback_schedule = OneCycle(1e-2, 100 * steps)
    times = interleaved({
        "in-graph 1cycle (lr + beta_1)": _epoch_timer(in_graph, x, y),
        "constant learning rate": _epoch_timer(constant, x, y),
        "per-batch callback 1cycle (lr only)": _epoch_timer(
            callback, x, y, callbacks=[PerBatchOneCycle(callback_schedule)]),
    }, repeats)
    reference = times["constant learning rate"]
    lines = ["| contender | median s / epoch | min-max | vs constant rate |", "|---|---|---|---|"]
    lines += [ratio_row(name, values, reference) for name, values in times.items()]
    ratio = np.median(times["in-graph 1cycle (lr + beta_1)"]) / np.median(reference)
    verdict = "met" if ratio <= 1.05 else "missed"
    lines += ["", f"Goal (in-graph 1cycle <= 1.05x a constant rate): **{verdict}** "
              f"({ratio:.2f}x). All three are the recipe as returned (32 batches per compiled "
              "call, XLA); the per-batch callback makes its `fit` run one batch per call, as "
              "it must to see every batch."]
    return lines


class _EpochClock(keras.callbacks.Callback):
    """Records when each epoch ends (an epoch hook: `fit` keeps 32 batches per call)."""

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())


class _RebuildTrainFunction(keras.callbacks.Callback):
    """What `OneCycleSpan` did before the span was optimizer state: a new trace per `fit`."""

    def on_train_begin(self, logs=None):
        self.model.make_train_function(force=True)


def _fit_epochs(model, x, y, epochs, callbacks=()):
    """Seconds of each epoch of one new `fit` call; the first includes the call's set-up."""
    clock = _EpochClock()
    started = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[clock, *callbacks])
    return np.diff([started] + clock.ends)


def fresh_fit(x, y, repeats, layers, epochs):
    def recipe(**kwargs):
        model = keras_recipes.build_default_dnn(x.shape[1:], 10, num_hidden_layers=layers,
                                                seed=0, **kwargs)
        model.fit(x[:256], y[:256], epochs=1, batch_size=32, verbose=0)  # trace once
        return model

    contenders = {  # name -> (model, extra callbacks)
        "1cycle, span stretched by each `fit` (recipe default)": (recipe(), ()),
        "constant learning rate": (recipe(one_cycle=False), ()),
        "1cycle, train function rebuilt by each `fit` (before)": (
            recipe(), (_RebuildTrainFunction(),)),
    }
    first = {name: [] for name in contenders}
    steady = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, (model, callbacks) in contenders.items():
            durations = _fit_epochs(model, x, y, epochs, callbacks)
            first[name].append(durations[0])
            steady[name].append(statistics.median(durations[1:]))
    extra = {name: [f - s for f, s in zip(first[name], steady[name])] for name in contenders}
    reference = "constant learning rate"
    lines = ["| contender | median first epoch s | median steady epoch s | median extra s "
             "(first - steady) | min-max extra | extra vs constant | steady vs constant |",
             "|---|---|---|---|---|---|---|"]
    for name in contenders:
        lines.append(
            f"| {name} | {statistics.median(first[name]):.3f} | "
            f"{statistics.median(steady[name]):.3f} | {statistics.median(extra[name]):.3f} | "
            f"{min(extra[name]):.3f}-{max(extra[name]):.3f} | "
            f"{statistics.median(extra[name]) / statistics.median(extra[reference]):.2f}x | "
            f"{statistics.median(steady[name]) / statistics.median(steady[reference]):.2f}x |")
    name = "1cycle, span stretched by each `fit` (recipe default)"
    extra_ratio = statistics.median(extra[name]) / statistics.median(extra[reference])
    steady_ratio = statistics.median(steady[name]) / statistics.median(steady[reference])
    verdict = "met" if max(extra_ratio, steady_ratio) <= 1.1 else "missed"
    lines += ["", f"Goal (a new `fit` with the 1cycle: extra first-epoch cost and steady epoch "
              f"<= 1.1x a constant rate's): **{verdict}** (extra {extra_ratio:.2f}x, steady "
              f"{steady_ratio:.2f}x). Each repeat is one new `fit` of {epochs} epochs per "
              "contender, interleaved, after a warm-up `fit` that traced each model; the "
              "steady epoch is the median of the later epochs of the same call."]
    return lines


def fit_throughput(x, y, x_test, y_test, repeats, layers):
    def recipe():
        return keras_recipes.build_default_dnn(x.shape[1:], 10, num_hidden_layers=layers,
                                               seed=0, total_steps=10_000)

    def plain():
        built = recipe()  # the same layers and initial weights, in a plain keras.Model ...
        model = keras.Model(built.inputs, built.outputs)
        model.compile(optimizer=keras.optimizers.Nadam(), loss=built.loss,
                      metrics=["accuracy"])  # ... with Keras's default compile
        return model

    models = {"recipe (as returned)": recipe(), "same model, plain Keras compile": plain()}
    for model in models.values():
        model.fit(x[:256], y[:256], epochs=1, batch_size=32, verbose=0)
    times = interleaved({name: _epoch_timer(model, x, y) for name, model in models.items()},
                        repeats)
    reference = times["same model, plain Keras compile"]
    lines = ["| contender | median s / epoch | min-max | vs plain Keras |", "|---|---|---|---|"]
    lines += [ratio_row(name, values, reference) for name, values in times.items()]
    accuracy = {name: model.evaluate(x_test, y_test, verbose=0)[1]
                for name, model in models.items()}
    speedup = np.median(reference) / np.median(times["recipe (as returned)"])
    lines += ["", "Test accuracy after the timed epochs: " + ", ".join(
        f"{name} {value:.4f}" for name, value in accuracy.items()) + ".",
        f"Goal (recipe >= 1.5x faster at equal accuracy): "
        f"**{'met' if speedup >= 1.5 else 'missed'}** ({speedup:.2f}x)."]
    return lines


def import_time(repeats):
    def importing(module):
        code = f"import time; t = time.perf_counter(); import {module}; " \
               "print(time.perf_counter() - t)"

        def run():
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            return float(result.stdout.strip().splitlines()[-1])
        return run

    times = interleaved({"import keras": importing("keras"),
                         "import keras_recipes": importing("keras_recipes")}, repeats)
    lines = ["| contender | median s | min-max | vs import keras |", "|---|---|---|---|"]
    lines += [ratio_row(name, values, times["import keras"]) for name, values in times.items()]
    ratio = np.median(times["import keras_recipes"]) / np.median(times["import keras"])
    lines += ["", f"Goal (<= 1.2x): **{'met' if ratio <= 1.2 else 'missed'}** ({ratio:.2f}x)."]
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS_DIR / "speed.md",
                        help="where to write the markdown section")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="run only these subsections")
    args = parser.parse_args(argv)
    (x, y), _, (x_test, y_test) = load_mnist()
    x, x_test = x / 255.0, x_test / 255.0
    repeats, layers = (1, 2) if args.quick else (5, 5)
    if args.quick:
        x, y, x_test, y_test = x[:2048], y[:2048], x_test[:512], y_test[:512]
    command = "python benchmarks/bench_speed.py" + (" --quick" if args.quick else "") + (
        "" if set(args.only) == set(SECTIONS) else " --only " + " ".join(args.only))
    lines = header("Speed: recipes against plain Keras", command)
    lines += [f"MNIST, {len(x)} training samples, batch 32, a {layers}-hidden-layer "
              "`build_default_dnn`; each epoch timed after a warm-up fit (traced), contenders "
              "interleaved; median and min-max over the repeats each section states."]
    fresh_repeats = repeats if args.quick else 7
    import_repeats = 3 if args.quick else 7
    sections = {  # key -> (title, repeats, run)
        "overhead": ("1cycle overhead", repeats,
                     lambda: one_cycle_overhead(x, y, repeats, layers)),
        "fresh_fit": ("A new `fit` call", fresh_repeats, lambda: fresh_fit(
            x, y, fresh_repeats, layers, 2 if args.quick else 3)),
        "throughput": ("Recipe fit throughput", repeats,
                       lambda: fit_throughput(x, y, x_test, y_test, repeats, layers)),
        "import": ("Import time", import_repeats, lambda: import_time(import_repeats)),
    }
    for key, (title, count, run) in sections.items():
        if key in args.only:
            lines += ["", f"### {title}", "", f"{count} repeats.", ""] + run()
    write_section(args.output, lines)


if __name__ == "__main__":
    main()
