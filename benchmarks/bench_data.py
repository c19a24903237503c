"""Memory: a folder of images held in memory against streamed, and a CLI run on it.

    .venv/bin/python benchmarks/bench_data.py [--quick]

Generates a folder of class sub-folders of PNG images (full run: 16,000 images of
128 x 128 x 3 in 4 classes, about 3.1 GB as float32; `--quick`: 300 of 32 x 32), then
measures the peak resident memory (`ru_maxrss`) of each contender, each in a fresh
process, one after the other:

- **0.1.0's loading**: every image decoded into a list of arrays, stacked, standardised
  (what `datasets.load` did for TensorFlow Datasets before 0.2: the arrays, their stack
  and its float32 copies);
- **arrays from the stream**: `datasets.load(folder)` then `x_train`, `x_val`, `x_test`
  (each split read into one preallocated array: what a user touching `x_train` holds);
- **streamed**: `datasets.load(folder)` (standardisation statistics from one pass) then
  one pass over `train`, `validation` and `test` batches: what the CLI does;
- **CLI train**: `keras-recipes train --dataset FOLDER` (default_dnn, 1 epoch, test
  evaluation and the report included), the issue's goal: at most 1.5 GB resident for
  the full folder.

The process that imports TensorFlow and Keras and nothing else is measured too, so
that what the data costs can be told from what TensorFlow costs. Writes the markdown
section to `benchmarks/results/data.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import header, write_section  # noqa: E402

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "data.md"
GOAL_GB = 1.5
CONTENDERS = ("import only", "0.1.0's loading", "arrays from the stream", "streamed",
              "CLI train")


def make_folder(root, count, size, classes=4, seed=0):
    """`count` PNG images of `size` x `size` x 3 in `classes` sub-folders; each class
    brightens one channel of uniform noise (PNG-compressed noise: ~the raw size)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index in range(count):
        label = index % classes
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 100, (size, size, 3), dtype="uint8")
        pixels[..., label % 3] += 120
        Image.fromarray(pixels).save(folder / f"{index:05d}.png")
    return root


def child(mode, folder, size):
    """Runs one contender in this (fresh) process; returns the samples it held or read."""
    started = time.perf_counter()
    import keras  # noqa: F401
    import numpy as np
    import tensorflow as tf

    from keras_recipes import datasets

    figures = {"samples": 0}
    if mode == "0.1.0's loading":
        paths = sorted(str(p) for p in pathlib.Path(folder).rglob("*.png"))
        images = []
        for path in paths:
            image = tf.io.decode_image(tf.io.read_file(path), channels=3)
            images.append(tf.image.resize(image, (size, size)).numpy())
        x = np.stack(images)
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-7
        x = ((x - mean) / std).astype("float32")
        figures["samples"] = len(x)
    elif mode == "arrays from the stream":
        data = datasets.load(folder, image_size=(size, size))
        figures["samples"] = sum(len(a) for a in (data.x_train, data.x_val, data.x_test))
    elif mode == "streamed":
        data = datasets.load(folder, image_size=(size, size))
        figures["samples"] = sum(len(x) for split in (data.train, data.validation, data.test)
                                 for x, _ in split.as_numpy_iterator())
    figures["seconds"] = time.perf_counter() - started
    return figures


def measure(mode, folder, size, output):
    """Runs a contender in a fresh process; returns its figures (peak resident memory)."""
    if mode == "CLI train":
        command = [sys.executable, "-m", "keras_recipes_cli", "train", "--dataset",
                   str(folder), "--set", f"dataset.image_size=[{size}, {size}]",
                   "--set", "fit.epochs=1", "--output", str(output)]
    else:
        command = [sys.executable, __file__, "--child", mode, str(folder), str(size)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    stdout = process.stdout.read()
    # wait4: this child's own peak (RUSAGE_CHILDREN would be the largest of all so far).
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    if process.returncode != 0:
        raise SystemExit(f"{mode} failed (exit {process.returncode}): {' '.join(command)}")
    figures = {"seconds": time.perf_counter() - started,
               "peak_gb": usage.ru_maxrss * 1024 / 1e9}
    if mode == "CLI train":
        metrics = json.loads((output / "metrics.json").read_text())
        figures["test_accuracy"] = metrics.get("test_accuracy")
    else:
        figures["samples"] = json.loads(stdout.strip().splitlines()[-1])["samples"]
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 images of 32 x 32")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FOLDER", "SIZE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, folder, size = args.child
        print(json.dumps(child(mode, folder, int(size))))
        return
    count, size = (300, 32) if args.quick else (16000, 128)
    with tempfile.TemporaryDirectory(prefix="kr-bench-data-") as work:
        work = pathlib.Path(work)
        started = time.perf_counter()
        folder = make_folder(work / "images", count, size)
        print(f"Wrote {count} PNG images of {size}x{size} in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        rows = {}
        for mode in CONTENDERS:
            print(f"  {mode} ...", flush=True)
            rows[mode] = measure(mode, folder, size, work / "run")
            print(f"  {mode}: {rows[mode]}", flush=True)
        megabytes = sum(p.stat().st_size for p in folder.rglob("*.png")) / 1e6
    as_float32 = count * size * size * 3 * 4 / 1e9
    command = "python benchmarks/bench_data.py" + (" --quick" if args.quick else "")
    lines = header("Memory: a folder of images in memory against streamed", command)
    lines += [
        f"{count} PNG images of {size} x {size} x 3 in 4 class sub-folders ({megabytes:.0f} MB "
        f"of files; {as_float32:.2f} GB as float32), split 68/12/20 (stratified). Peak "
        "resident memory (`ru_maxrss`) of a fresh process per contender, run one after the "
        "other.", "",
        "| contender | peak resident GB | seconds |", "|---|---|---|"]
    for mode in CONTENDERS:
        row = rows[mode]
        lines.append(f"| {mode} | {row['peak_gb']:.2f} | {row['seconds']:.0f} |")
    cli = rows["CLI train"]
    lines += [
        "", f"- CLI train: test accuracy {cli['test_accuracy']:.3f} after 1 epoch.",
        f"- Goal (CLI train on the folder <= {GOAL_GB} GB resident): "
        f"{'met' if cli['peak_gb'] <= GOAL_GB else 'not met'} ({cli['peak_gb']:.2f} GB"
        + ("; the quick run's folder is too small to tell)" if args.quick else ")")]
    write_section(args.output, lines)


if __name__ == "__main__":
    main()
