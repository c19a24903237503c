"""TensorBoard scalars written with TensorFlow alone, for the callbacks that log them.

`tf.summary.scalar` lives in the `tensorboard` package, which TensorFlow no longer installs
(2.21 raises `TBNotInstalledError` without it). A scalar is `tf.summary.write` with the
scalars plugin's metadata: the event file is the same, and only TensorFlow is needed to
write it (the TensorBoard app reads it).
"""

from __future__ import annotations

import os

__all__ = ["summary_writer", "write_scalars"]


def summary_writer(log_dir, needed_by):
    """A `tf.summary` file writer for `log_dir`.

    Args:
        log_dir: str, the folder of the event files (made if missing).
        needed_by: str, who needs it and how to do without, for the `ImportError`
            (e.g. "TrainingMonitor(log_dir=...) ... or pass log_dir=None").

    Raises:
        ImportError: when TensorFlow is not installed, saying what needs it.
    """
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(f"{needed_by}: TensorBoard event files are written with TensorFlow's "
                          "tf.summary, and TensorFlow is not installed (pip install "
                          "tensorflow).") from error
    return tf.summary.create_file_writer(os.fspath(log_dir))


def write_scalars(writer, step, scalars):
    """Writes `{tag: number}` as TensorBoard scalars at `step`, and flushes."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    # What tf.summary.scalar writes, without needing the tensorboard package.
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    with writer.as_default(step=int(step)):
        for tag, value in scalars.items():
            tf.summary.write(tag, tf.constant(float(value), tf.float32), metadata=metadata)
    writer.flush()
