"""LayerNorm and GroupNorm against BatchNorm at batch sizes 4 and 32 on MNIST, default DNN.

The chapter's notes recommend LayerNormalization or GroupNormalization under a batch size
of 8, where the statistics of a batch are too noisy for BatchNormalization (and its moving
averages, used at inference, drift from what training saw). Here
`build_default_dnn(normalization=...)` trains with each at batch sizes 4 and 32, same
seeds, same data, the same number of epochs (so batch 4 takes 8x the steps), the recipe's
1cycle and early stopping on. GroupNorm uses the recipe's automatic groups (5 groups of
20 units for 100 units).

Usage: python benchmarks/bench_normalization.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS_DIR, epoch_timer, header, load_mnist, write_section  # noqa: E402

import keras_recipes  # noqa: E402

NORMALIZATIONS = ("batch", "layer", "group")
BATCH_SIZES = (4, 32)


def run(normalization, batch_size, data, epochs, learning_rate, seed, layers):
    (x, y), (x_val, y_val), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = keras_recipes.build_default_dnn(x.shape[1:], 10, num_hidden_layers=layers,
                                            normalization=normalization,
                                            learning_rate=learning_rate, seed=seed)
    timer = epoch_timer()
    history = model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs,
                        batch_size=batch_size, verbose=0, callbacks=[timer])
    test = model.evaluate(x_test, y_test, verbose=0)[1]
    # The first epoch also traces and compiles: the steady epochs say what training costs.
    steady = timer.times[1:] or timer.times
    return {"test": test, "epochs": len(history.epoch),
            "seconds_per_epoch": statistics.median(steady)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--output", type=pathlib.Path,
                        default=RESULTS_DIR / "normalization.md",
                        help="where to write the markdown section")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per configuration")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=1e-2,
                        help="the 1cycle's peak, the same for every run (the recipe's default)")
    parser.add_argument("--max-train-samples", type=int, default=10000,
                        help="train on the first N images (batch 4 takes 2,500 steps an epoch "
                        "for 10,000)")
    args = parser.parse_args(argv)
    (x, y), (x_val, y_val), (x_test, y_test) = load_mnist()
    x, x_val, x_test = x / 255.0, x_val / 255.0, x_test / 255.0
    x, y = x[:args.max_train_samples], y[:args.max_train_samples]
    epochs, seeds, layers = (args.epochs, args.seeds, 3) if not args.quick else (1, 1, 1)
    if args.quick:
        x, y, x_val, y_val = x[:128], y[:128], x_val[:64], y_val[:64]
        x_test, y_test = x_test[:64], y_test[:64]
    data = ((x, y), (x_val, y_val), (x_test, y_test))

    command = "python benchmarks/bench_normalization.py" + (" --quick" if args.quick else (
        f" --epochs {args.epochs} --seeds {args.seeds} --learning-rate {args.learning_rate:g}"
        f" --max-train-samples {args.max_train_samples}"))
    # The header is taken before the runs: its load average is the one they started under.
    lines = header("Normalization: LayerNorm and GroupNorm against BatchNorm by batch size",
                   command)
    results = {(n, b): [] for b in BATCH_SIZES for n in NORMALIZATIONS}
    for seed in range(seeds):  # interleaved: each seed runs every configuration
        for batch_size in BATCH_SIZES:
            for normalization in NORMALIZATIONS:
                row = run(normalization, batch_size, data, epochs, args.learning_rate, seed,
                          layers)
                results[normalization, batch_size].append(row)
                print(normalization, batch_size, seed, row, flush=True)

    lines += [f"`build_default_dnn` ({layers} hidden layers of 100, ELU, Nadam on the 1cycle "
              f"peaking at {args.learning_rate:g}, early stopping with patience 10) with each "
              f"`normalization`, {len(x)} training / {len(x_val)} validation / {len(x_test)} "
              f"test MNIST images (pixels / 255), up to {epochs} epochs at each batch size, "
              f"seeds 0..{seeds - 1}. `group`: 5 groups of 20 units (the recipe's automatic "
              "groups).", "",
              "| normalization | batch size | mean test acc | per seed | epochs run | "
              "s per epoch (median, after the first) |", "|---|---|---|---|---|---|"]
    mean = {}
    for (normalization, batch_size), rows in results.items():
        tests = [r["test"] for r in rows]
        mean[normalization, batch_size] = statistics.mean(tests)
        lines.append(
            f"| {normalization} | {batch_size} | {mean[normalization, batch_size]:.4f} | "
            + ", ".join(f"{t:.4f}" for t in tests)
            + f" | {', '.join(str(r['epochs']) for r in rows)} | "
            + f"{statistics.median(r['seconds_per_epoch'] for r in rows):.1f} |")
    lines.append("")
    for batch_size in BATCH_SIZES:
        best = max(NORMALIZATIONS, key=lambda n, b=batch_size: mean[n, b])
        lines.append(
            f"- Batch {batch_size}: best {best} ({100 * mean[best, batch_size]:.2f}%); BatchNorm "
            f"{100 * mean['batch', batch_size]:.2f}%, LayerNorm "
            f"{100 * mean['layer', batch_size]:.2f}%, GroupNorm "
            f"{100 * mean['group', batch_size]:.2f}%.")
    lines.append("- The notes' advice is LayerNorm/GroupNorm under batch size 8; with "
                 f"{seeds} seed(s), gaps smaller than the per-seed spread are not evidence.")
    write_section(args.output, lines)


if __name__ == "__main__":
    main()
