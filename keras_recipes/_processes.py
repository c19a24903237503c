"""Training on several processes (one per machine, or several on one): which process this is,
waiting for the others, and starting Keras's multi-process runtime from its environment.

Keras 3 trains across processes with `keras.distribution` on JAX (its `fit` does not
support TensorFlow's `MultiWorkerMirroredStrategy`, keras-team/keras#20585):
`keras.distribution.initialize()` joins the processes named by the environment variables
`KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES` and
`KERAS_DISTRIBUTION_PROCESS_ID`, and `DataParallel` spreads every global batch over all
their devices. On other backends there is one process.
"""

from __future__ import annotations

import os
import tempfile

import keras

__all__ = ["ENVIRONMENT", "barrier", "broadcast", "count", "index", "is_writer",
           "join_processes", "join_save"]

# Keras's own variables (keras.distribution.initialize reads them).
ENVIRONMENT = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
               "KERAS_DISTRIBUTION_PROCESS_ID")


def _jax_distributed():
    if keras.backend.backend() != "jax":
        return None
    import jax

    # Not `jax.process_count()` alone: asked before the processes join, it would start JAX's
    # runtime for this process only, and joining afterwards would fail.
    return jax if jax.distributed.is_initialized() and jax.process_count() > 1 else None


def count():
    """int, the number of processes training together (1 unless JAX runs several)."""
    jax = _jax_distributed()
    return 1 if jax is None else jax.process_count()


def index():
    """int, this process's number, from 0."""
    jax = _jax_distributed()
    return 0 if jax is None else jax.process_index()


def is_writer():
    """Whether this process writes the files of a run (backup, record, report): the first."""
    return index() == 0


def barrier(name):
    """Waits until every process has reached the barrier called `name`."""
    if count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def join_save(model, suffix=".weights.h5"):
    """What a process that does not write does while the writer saves `model` (its
    weights, or with `suffix=".keras"` the whole model).

    Reading a variable spread over processes is a collective operation (JAX checks that
    every process takes part): the others save too, into a folder of their own that is
    then deleted.
    """
    with tempfile.TemporaryDirectory(prefix="keras_recipes_") as folder:
        path = os.path.join(folder, "discarded" + suffix)
        model.save(path) if suffix == ".keras" else model.save_weights(path)


def broadcast(value):
    """The first process's `value` (an int), in every process."""
    if count() == 1:
        return int(value)
    import numpy as np
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.asarray(value, dtype=np.int64)))


def join_processes():
    """Joins the processes of a data-parallel run named by Keras's `KERAS_DISTRIBUTION_*`
    variables, and returns the distribution to give the recipe.

    Keras 3 trains across processes (machines, or several on one) with `keras.distribution`
    on JAX; TensorFlow's `MultiWorkerMirroredStrategy` does not work with its `fit`
    (keras-team/keras#20585). This calls `keras.distribution.initialize()`, which reads
    `KERAS_DISTRIBUTION_JOB_ADDRESSES` (the first process's `host:port`, or every
    process's), `KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`,
    after turning on JAX's collectives between CPUs (gloo), which are off by default.
    Call it first in every process, before any model is made.

    Returns:
        A `keras.distribution.DataParallel` over every device of every process, with
        `auto_shard_dataset=False` (the recipe gives each process its share of every
        global batch of arrays), or None when the variables are not set (one process).

    Raises:
        ValueError: when they are set but the backend is not JAX, naming `KERAS_BACKEND`.

    Example:

    >>> distribution = keras_recipes.join_processes()  # doctest: +SKIP
    >>> model = keras_recipes.build_default_dnn(
    ...     (784,), 10, distribution=distribution)  # doctest: +SKIP
    >>> model.fit(x_train, y_train, epochs=10, batch_size=64)  # doctest: +SKIP
    """
    if not any(os.environ.get(name) for name in ENVIRONMENT):
        return None
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(f"KERAS_DISTRIBUTION_* is set, so this run trains on several "
                         f"processes, which Keras 3 does with JAX; KERAS_BACKEND is "
                         f"{backend!r}. Set KERAS_BACKEND=jax (pip install jax)")
    import jax

    if not jax.distributed.is_initialized():
        # JAX's collectives between CPUs are off by default; gloo needs nothing installed
        # (accelerators use their own).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        keras.distribution.initialize()
    return keras.distribution.DataParallel(devices=keras.distribution.list_devices(),
                                           auto_shard_dataset=False)
