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
- Per kind of model (an MLP, a small CNN, a GRU, a MobileNetV2 alpha 0.35 transfer model
  with its base frozen), a steady epoch of the model given to `compile_recipe` with the
  recipe's execution defaults, and with `jit_compile=False`, against the same model
  compiled with plain Keras defaults; run it once per backend (`KERAS_BACKEND`). Each kind
  runs in a process of its own (`--kind-worker KIND`); `--kinds` picks some.
- Backends: the 5x100 default DNN at a constant rate on the JAX and TensorFlow backends, and
  plain Keras on TensorFlow, against a hand-written jitted JAX loop of the same training
  (`_jax_loop.py`); each contender in a process of its own, since Keras fixes its backend
  when imported (this script's `--worker NAME` runs one and prints its epoch times as JSON).

Usage: python benchmarks/bench_speed.py [--quick] [--only SECTION ...] [--kinds KIND ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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

SECTIONS = ("overhead", "fresh_fit", "throughput", "import", "models", "backends")
# --only backends: worker -> (row name, KERAS_BACKEND of its process)
BACKEND_CONTENDERS = {
    "hand_loop": ("hand-written JAX loop (jit, 32 steps per lax.scan)", "jax"),
    "recipe_jax": ("recipe, JAX backend", "jax"),
    "recipe_tensorflow": ("recipe, TensorFlow backend", "tensorflow"),
    "plain_tensorflow": ("plain Keras compile, TensorFlow backend", "tensorflow"),
}
# --only models: kind -> its rows' name (--kinds picks some)
MODEL_KINDS = {
    "mlp": "MLP (5x100, BatchNorm, ELU)",
    "cnn": "CNN (2 conv, pooling)",
    "gru": "GRU (64 units, 28 steps of 28)",
    "transfer": "MobileNetV2 alpha 0.35, 96x96, base frozen",
}
# A `jit_compile=False` contender only where it means a graph without XLA: on JAX, Keras
# without jit runs every op eagerly.
JIT_IS_OPTIONAL = keras.backend.backend() != "jax"


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


def _mlp(x):
    inputs = keras.Input(x.shape[1:])
    hidden = keras.layers.Flatten()(inputs)
    for _ in range(5):
        hidden = keras.layers.Dense(100, use_bias=False, kernel_initializer="he_normal")(hidden)
        hidden = keras.layers.Activation("elu")(keras.layers.BatchNormalization()(hidden))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(hidden))


def _cnn(x):
    return keras.Sequential([
        keras.Input(x.shape[1:]),
        keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax")])


def _gru(x):
    return keras.Sequential([keras.Input(x.shape[1:]), keras.layers.GRU(64),
                             keras.layers.Dense(10, activation="softmax")])


def _transfer(x):
    # Random weights: the time of an epoch does not depend on them (the shared ImageNet
    # file is for alpha 1.0).
    base = keras.applications.MobileNetV2(input_shape=x.shape[1:], alpha=0.35,
                                          include_top=False, weights=None)
    base.trainable = False
    inputs = keras.Input(x.shape[1:])
    features = keras.layers.GlobalAveragePooling2D()(base(inputs, training=False))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(features))


def _kind(kind, x, quick):
    """The model builder of `kind` and its inputs made from flat MNIST digits `x`."""
    images = x.reshape(-1, 28, 28, 1)
    if kind == "mlp":
        return _mlp, x
    if kind == "cnn":
        return _cnn, images
    if kind == "gru":
        return _gru, images.reshape(-1, 28, 28)
    size = 32 if quick else 2048  # MNIST digits enlarged to 96x96x3
    small = np.repeat(np.repeat(images[:size], 4, axis=1), 4, axis=2)[:, 8:104, 8:104]
    return _transfer, np.repeat(small, 3, axis=-1)


def kind_worker(kinds, samples, repeats, quick):
    """Kinds of `models`, in this process: their table rows (recipe defaults, recipe without
    XLA except on JAX, plain Keras), as JSON-ready `{"rows": [...], "backend": name}`.

    Each contender is the same architecture with the same initial weights; the recipe's
    are given to `compile_recipe` (Nadam on the 1cycle, its execution defaults), plain
    Keras's compiled with `compile(Nadam(), loss, metrics)`.
    """
    (x, y), _, _ = load_mnist()
    rows = []
    for kind in kinds:
        rows += _kind_rows(kind, x[:samples] / 255.0, y[:samples], repeats, quick)
    return {"rows": rows, "backend": keras.backend.backend()}


def _kind_rows(kind, x, y, repeats, quick):
    build, inputs = _kind(kind, x, quick)
    labels = y[:len(inputs)]
    keras.utils.set_random_seed(0)
    plain = build(inputs)
    weights = plain.get_weights()
    plain.compile(optimizer=keras.optimizers.Nadam(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    models = {"plain Keras compile": plain}
    contenders = [("recipe defaults", {}), ("recipe, jit_compile=False", {"jit_compile": False})]
    for name, options in contenders if JIT_IS_OPTIONAL else contenders[:1]:
        own = build(inputs)
        own.set_weights(weights)
        models[name] = keras_recipes.compile_recipe(
            own, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
            total_steps=10_000, **options)
    for model in models.values():  # traced before the timing
        model.fit(inputs[:64], labels[:64], epochs=1, batch_size=32, verbose=0)
    times = interleaved({name: _epoch_timer(model, inputs, labels)
                         for name, model in models.items()}, repeats)
    reference = times["plain Keras compile"]
    return [ratio_row(f"{MODEL_KINDS[kind]} | {name}", values, reference)
            for name, values in times.items()]


def model_kinds(samples, repeats, quick, kinds):
    """Steady epochs of each kind of model, each kind in a process of its own (`kind_worker`):
    one process compiling every kind's contenders on JAX died after 40 minutes (LLVM: "Cannot
    allocate memory" with most of the memory free, then a segfault; the section was lost),
    and a kind's numbers do not depend on the others'. The quick smoke run puts every kind in
    one process (each process imports Keras anew)."""
    samples = 64 if quick else samples  # a smoke run: every kind and contender, two batches
    lines = [f"Backend: {keras.backend.backend()}. Samples per epoch: {samples} "
             f"({32 if quick else 2048} for the transfer model, MNIST digits enlarged to "
             "96x96x3); batch 32." + ("" if JIT_IS_OPTIONAL else " No `jit_compile=False` "
                                      "row: without jit, Keras on JAX runs every op eagerly."),
             "",
             "| model | contender | median s / epoch | min-max | vs plain Keras |",
             "|---|---|---|---|---|"]
    for group in [kinds] if quick else [[kind] for kind in kinds]:
        arguments = ["--kind-worker", *group, "--samples", str(samples), "--repeats",
                     str(repeats)] + (["--quick"] if quick else [])
        lines += _in_own_process(arguments, keras.backend.backend(), " ".join(group))["rows"]
    return lines


class _SteadyClock(keras.callbacks.Callback):
    """The seconds of each epoch of a `fit` (an epoch hook only: the recipe keeps 32 batches
    per compiled call), counted once the epoch's last step has finished."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        float((logs or {}).get("loss", 0.0))  # waits for the epoch's last step
        self.seconds.append(time.perf_counter() - self._started)


def backend_worker(name, samples, epochs):
    """One contender of `backends`, in this process: a warm-up epoch (compiling every call
    shape), then `epochs + 1` epochs, the first of which (a new `fit`'s set-up) is left out.

    Returns:
        dict: `seconds` of the timed epochs, `accuracy` (training, last epoch), `backend`.
    """
    (x, y), _, _ = load_mnist()
    x, y = x[:samples] / 255.0, y[:samples]
    if name == "hand_loop":
        import _jax_loop

        seconds, accuracy = _jax_loop.train(x, y, epochs + 1)
        return {"seconds": seconds[1:], "accuracy": accuracy, "backend": "jax (no Keras)"}
    if name.startswith("recipe"):
        model = keras_recipes.build_default_dnn(x.shape[1:], 10, num_hidden_layers=5,
                                                units=100, learning_rate=1e-3,
                                                schedule="constant", seed=0)
    else:
        keras.utils.set_random_seed(0)
        model = _mlp(x)
        model.compile(optimizer=keras.optimizers.Nadam(), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # warm-up
    clock = _SteadyClock()
    history = model.fit(x, y, epochs=epochs + 1, batch_size=32, verbose=0, callbacks=[clock])
    return {"seconds": clock.seconds[1:], "accuracy": float(history.history["accuracy"][-1]),
            "backend": keras.backend.backend()}


def _in_own_process(arguments, backend, name):
    """Runs this script with `arguments` in a fresh process on `backend`; its JSON answer."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), *arguments],
                            capture_output=True, text=True,
                            env=dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3"))
    if result.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    if not found["backend"].startswith(backend):
        raise RuntimeError(f"worker {name} ran on {found['backend']}, not {backend}")
    return found


def _run_worker(name, samples, epochs):
    return _in_own_process(["--worker", name, "--samples", str(samples), "--epochs",
                            str(epochs)], BACKEND_CONTENDERS[name][1], name)


def backends(samples, repeats, epochs):
    """The default DNN's steady epoch per backend against the hand-written JAX loop."""
    if importlib.util.find_spec("jax") is None:
        return ["JAX is not installed (pip install jax): nothing to compare."]
    seconds = {name: [] for name in BACKEND_CONTENDERS}
    accuracy = {name: [] for name in BACKEND_CONTENDERS}
    for repeat in range(repeats):
        order = list(BACKEND_CONTENDERS)
        for name in order if repeat % 2 == 0 else reversed(order):  # alternate who goes first
            found = _run_worker(name, samples, epochs)
            seconds[name].append(statistics.median(found["seconds"]))
            accuracy[name].append(found["accuracy"])
    reference = seconds["hand_loop"]
    lines = [f"MNIST, {samples} training samples, batch 32; the 5x100 default DNN "
             "(`Dense(100, use_bias=False)`, He normal -> BatchNorm -> ELU, five times; softmax "
             "10), Nadam at a constant 1e-3, sparse cross-entropy. Each contender runs in a "
             f"process of its own, {repeats} processes each, taking turns (the order reversed "
             f"every other round): a warm-up epoch, then {epochs + 1} epochs, the first left "
             "out; a process's steady epoch is the median of the rest. The recipe is "
             "`build_default_dnn(..., schedule=\"constant\", learning_rate=1e-3)` as returned "
             "(32 batches per compiled call; XLA on TensorFlow); plain Keras the same layers "
             "with `compile(Nadam(), loss, metrics)`. The training accuracy (the last epoch's, "
             "median over the processes) shows that each trains alike.", "",
             "| contender | median s / epoch | min-max | vs hand-written loop | training "
             "accuracy |", "|---|---|---|---|---|"]
    for name, (row, _) in BACKEND_CONTENDERS.items():
        lines.append(ratio_row(row, seconds[name], reference)
                     + f" {statistics.median(accuracy[name]):.4f} |")
    ratio = statistics.median(seconds["recipe_jax"]) / statistics.median(reference)
    tensorflow = (statistics.median(seconds["recipe_tensorflow"])
                  / statistics.median(seconds["plain_tensorflow"]))
    lines += ["", f"Goal (recipe on JAX, the CLI's backend for the dense recipes, <= 1.2x the "
              f"hand-written loop): **{'met' if ratio <= 1.2 else 'missed'}** ({ratio:.2f}x). "
              f"The recipe on TensorFlow: {tensorflow:.2f}x plain Keras on TensorFlow."]
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
    parser.add_argument("--kinds", nargs="+", choices=MODEL_KINDS, default=list(MODEL_KINDS),
                        help="the kinds of model of the `models` section (default: all)")
    parser.add_argument("--worker", choices=BACKEND_CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--kind-worker", nargs="+", choices=MODEL_KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # one contender of `backends`, in its own process
        print(json.dumps(backend_worker(args.worker, args.samples, args.epochs)))
        return
    if args.kind_worker:  # one kind of `models`, in its own process
        print(json.dumps(kind_worker(args.kind_worker, args.samples, args.repeats, args.quick)))
        return
    (x, y), _, (x_test, y_test) = load_mnist()
    x, x_test = x / 255.0, x_test / 255.0
    repeats, layers = (1, 1) if args.quick else (5, 5)
    if args.quick:
        x, y, x_test, y_test = x[:256], y[:256], x_test[:256], y_test[:256]
    command = "python benchmarks/bench_speed.py" + (" --quick" if args.quick else "") + (
        "" if set(args.only) == set(SECTIONS) else " --only " + " ".join(args.only)) + (
        "" if set(args.kinds) == set(MODEL_KINDS) else " --kinds " + " ".join(args.kinds))
    lines = header("Speed: recipes against plain Keras", command)
    lines += [f"MNIST, {len(x)} training samples, batch 32, a {layers}-hidden-layer "
              "`build_default_dnn`; each epoch timed after a warm-up fit (traced), contenders "
              "interleaved; median and min-max over the repeats each section states."]
    fresh_repeats = repeats if args.quick else 7
    import_repeats = 1 if args.quick else 7
    sections = {  # key -> (title, repeats, run)
        "overhead": ("1cycle overhead", repeats,
                     lambda: one_cycle_overhead(x, y, repeats, layers)),
        "fresh_fit": ("A new `fit` call", fresh_repeats, lambda: fresh_fit(
            x, y, fresh_repeats, layers, 2 if args.quick else 3)),
        "throughput": ("Recipe fit throughput", repeats,
                       lambda: fit_throughput(x, y, x_test, y_test, repeats, layers)),
        "import": ("Import time", import_repeats, lambda: import_time(import_repeats)),
        "models": ("Per kind of model: the recipe's execution defaults against plain Keras",
                   repeats, lambda: model_kinds(len(x), repeats, args.quick, args.kinds)),
        "backends": ("Backends: the default DNN against a hand-written JAX loop", repeats,
                     lambda: backends(len(x), repeats, 1 if args.quick else 5)),
    }
    for key, (title, count, run) in sections.items():
        if key in args.only:
            lines += ["", f"### {title}", "", f"{count} repeats.", ""] + run()
    write_section(args.output, lines)


if __name__ == "__main__":
    main()
