"""Writing files so that a crash never leaves a truncated file that looks complete."""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile

__all__ = ["atomic_path", "save_model", "save_weights", "write_text"]


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path beside `path`; renames it into place on success.

    Args:
        path: str or Path, the final destination.
        suffix: str, the temporary file's suffix (Keras insists on `.keras`).
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp",
                                         dir=path.parent)
    os.close(handle)
    try:
        yield pathlib.Path(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path, text):
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def save_weights(model, path):
    """Saves a Keras model's weights (and optimizer state) to a `.weights.h5` file atomically."""
    with atomic_path(path, suffix=".weights.h5") as temporary:
        model.save_weights(temporary, overwrite=True)


def save_model(model, path):
    """Saves a Keras model to a `.keras` file atomically."""
    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)
