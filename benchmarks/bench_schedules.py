"""1cycle against performance scheduling (ReduceLROnPlateau) on MNIST, default DNN.

The chapter names two schedules worth using: the 1cycle, or ReduceLROnPlateau on the
validation loss. HOML reports, on Fashion-MNIST, 89.2% test accuracy for the 1cycle
against 88.7% for performance scheduling. Here `build_default_dnn(schedule=...)`
trains with each, same seeds, same data, the recipe's early stopping on; performance
scheduling starts from the 1cycle's peak and from a tenth of it.

Usage: python benchmarks/bench_schedules.py [--quick]
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
from _common import RESULTS_DIR, header, load_mnist, write_section  # noqa: E402

import keras_recipes  # noqa: E402

BOOK_FASHION_MNIST = {"one_cycle": 89.2, "plateau": 88.7}
# (label, schedule, learning rate): the 1cycle's peak is the recipe's default.
VARIANTS = [("one_cycle", "one_cycle", 1e-2), ("plateau 1e-2", "plateau", 1e-2),
            ("plateau 1e-3", "plateau", 1e-3)]


def run(schedule, learning_rate, data, epochs, seed):
    (x, y), (x_val, y_val), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = keras_recipes.build_default_dnn(x.shape[1:], 10, schedule=schedule,
                                            learning_rate=learning_rate, seed=seed)
    started = time.perf_counter()
    history = model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs, batch_size=32,
                        verbose=0)
    seconds = time.perf_counter() - started
    test = model.evaluate(x_test, y_test, verbose=0)[1]
    return {"test": test, "epochs": len(history.epoch), "seconds": seconds,
            "final_lr": float(model.optimizer.learning_rate)}


def _significance(rows_a, rows_b):
    """How the gap between two schedules' mean test accuracies compares to the seeds' spread."""
    a, b = [r["test"] for r in rows_a], [r["test"] for r in rows_b]
    if min(len(a), len(b)) < 2:
        return " (one seed: no spread to compare the gap with)"
    gap = statistics.mean(a) - statistics.mean(b)
    error = (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5
    spread = max(max(a) - min(a), max(b) - min(b))
    return (f" (a gap of {100 * gap:.2f} points, {abs(gap) / error:.1f} standard errors of the "
            f"difference of means; per-seed results spread over up to {100 * spread:.2f} "
            "points)") if error > 0 else f" (a gap of {100 * gap:.2f} points)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS_DIR / "schedules.md",
                        help="where to write the markdown section")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per schedule")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--max-train-samples", type=int, default=None,
                        help="train on the first N images only (a shorter run)")
    args = parser.parse_args(argv)
    (x, y), (x_val, y_val), (x_test, y_test) = load_mnist()
    x, x_val, x_test = x / 255.0, x_val / 255.0, x_test / 255.0
    if args.max_train_samples:
        x, y = x[:args.max_train_samples], y[:args.max_train_samples]
    epochs, seeds = (args.epochs, args.seeds) if not args.quick else (2, 1)
    if args.quick:
        x, y, x_val, y_val = x[:2000], y[:2000], x_val[:500], y_val[:500]
        x_test, y_test = x_test[:500], y_test[:500]
    data = ((x, y), (x_val, y_val), (x_test, y_test))

    command = "python benchmarks/bench_schedules.py" + (" --quick" if args.quick else "") + (
        f" --epochs {args.epochs} --seeds {args.seeds}" if not args.quick else "") + (
        f" --max-train-samples {args.max_train_samples}" if args.max_train_samples else "")
    # The header is taken before the runs: its load average is the one they started under.
    lines = header("Schedules: 1cycle against ReduceLROnPlateau", command)
    results = {label: [] for label, _, _ in VARIANTS}
    for seed in range(seeds):  # interleaved: each seed runs every schedule
        for label, schedule, learning_rate in VARIANTS:
            row = run(schedule, learning_rate, data, epochs, seed)
            results[label].append(row)
            print(label, seed, row, flush=True)

    lines += [f"`build_default_dnn` (3 hidden layers of 100, BatchNorm, ELU, Nadam), {len(x)} "
              f"training / {len(x_val)} validation / {len(x_test)} test MNIST images (pixels / "
              f"255), batch 32, up to {epochs} epochs with the recipe's early stopping "
              f"(patience 10), seeds 0..{seeds - 1}. The 1cycle peaks at 1e-2; plateau "
              "(`ReduceLROnPlateau(factor=0.5, patience=5)` on the validation loss) starts at "
              "1e-2 or 1e-3.", "",
              "| schedule | mean test acc | per seed | epochs run | final learning rate | "
              "time s | book (Fashion-MNIST) |", "|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        tests = [r["test"] for r in rows]
        book = f"{BOOK_FASHION_MNIST[name.split()[0]]}%"
        lines.append(
            f"| {name} | {statistics.mean(tests):.4f} | "
            + ", ".join(f"{t:.4f}" for t in tests)
            + f" | {', '.join(str(r['epochs']) for r in rows)} | "
            + ", ".join(f"{r['final_lr']:.2g}" for r in rows)
            + f" | {statistics.mean(r['seconds'] for r in rows):.0f} | {book} |")
    mean = {name: statistics.mean(r["test"] for r in rows) for name, rows in results.items()}
    plateau = max((label for label in mean if label.startswith("plateau")), key=mean.get)
    better = mean["one_cycle"] >= mean[plateau]
    lines += ["", f"1cycle {'>=' if better else '<'} the better plateau ({plateau}) here: "
              f"{100 * mean['one_cycle']:.2f}% against {100 * mean[plateau]:.2f}%"
              + _significance(results["one_cycle"], results[plateau])
              + "; the book reports 1cycle 89.2% against plateau 88.7% on Fashion-MNIST."]
    write_section(args.output, lines)


if __name__ == "__main__":
    main()
