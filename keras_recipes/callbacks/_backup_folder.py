"""The files of a backup: the last finished epoch, written so that a kill at any instant
leaves a complete one, and removed file by file (never the folder's other files)."""

from __future__ import annotations

import contextlib
import json
import os
import re

import numpy as np

from keras_recipes import _io

__all__ = ["METADATA", "BackupFolder"]

# Keras's name, so that a folder Keras's own BackupAndRestore wrote still loads.
METADATA = "training_metadata.json"
_WEIGHTS = re.compile(r"epoch_\d+\.weights\.h5")
_STATE = re.compile(r"epoch_\d+\.state\.npz")


class BackupFolder:
    """One backup folder: each epoch's weights (with the optimizer state) and the state of
    the callbacks that must survive a restart.

    An epoch is written in this order: its weights to a new file, then its arrays of
    callback state (best weights, ...) to a new file, each renamed into place once
    complete; then the metadata (the epoch, those files' names and the callbacks'
    other state), replaced in one rename; only then are the previous epoch's files
    removed. A kill at any instant leaves the metadata of the last complete epoch and
    the files it names.

    Args:
        folder: str, the folder (created when the first epoch is written).
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)

    def _path(self, name):
        return os.path.join(self.folder, name)

    def metadata(self):
        """The metadata of the last complete epoch, or None."""
        path = self._path(METADATA)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as file:
            return json.load(file)

    def save(self, model, epoch, state=None):
        """Backs up `model` (weights and optimizer) after `epoch` epochs, with `state`.

        Args:
            model: the model.
            epoch: int, the number of finished epochs.
            state: dict or None, part name -> dict of the part's state: JSON values,
                or lists of numpy arrays (kept in a `.npz` file beside the weights).
        """
        weights = f"epoch_{epoch}.weights.h5"
        _io.save_weights(model, self._path(weights))
        plain, arrays = _split(state or {})
        metadata = {"epoch": epoch, "batch": 0, "weights": weights, "state": plain}
        if arrays:
            metadata["arrays"] = f"epoch_{epoch}.state.npz"
            with _io.atomic_path(self._path(metadata["arrays"]), suffix=".npz") as temporary:
                with open(temporary, "wb") as file:
                    np.savez(file, **arrays)
        _io.write_text(self._path(METADATA), json.dumps(metadata))
        self._remove_own(keep={weights, metadata.get("arrays")})

    def restore(self, model):
        """Loads the last complete epoch into `model` (weights and optimizer state).

        Returns:
            `(epoch, state)`, the number of finished epochs and the saved state (arrays
            included), or None when the folder holds no epoch written here.
        """
        metadata = self.metadata()
        if metadata is None or "weights" not in metadata:
            return None
        optimizer = model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)  # its state is in the backup too
        model.load_weights(self._path(metadata["weights"]))
        state = metadata.get("state") or {}
        if metadata.get("arrays"):
            with np.load(self._path(metadata["arrays"]), allow_pickle=False) as arrays:
                _merge(state, {key: arrays[key] for key in arrays.files})
        return metadata["epoch"], state

    def remove(self):
        """Removes the files written here, and the folder when nothing else is in it."""
        if not os.path.isdir(self.folder):
            return
        self._remove_own(keep=())
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._path(METADATA))
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)

    def _remove_own(self, keep):
        for name in os.listdir(self.folder):
            if name not in keep and (_WEIGHTS.fullmatch(name) or _STATE.fullmatch(name)):
                os.remove(self._path(name))


def _split(state):
    """`state` without its arrays, and the arrays under `part/key/index` names."""
    plain, arrays = {}, {}
    for part, values in state.items():
        plain[part] = {}
        for key, value in values.items():
            if isinstance(value, (list, tuple)) and value and all(
                    isinstance(item, np.ndarray) for item in value):
                plain[part][key] = {"arrays": len(value)}
                for index, item in enumerate(value):
                    arrays[f"{part}/{key}/{index}"] = item
            else:
                plain[part][key] = value
    return plain, arrays


def _merge(state, arrays):
    for part, values in state.items():
        for key, value in values.items():
            if isinstance(value, dict) and set(value) == {"arrays"}:
                values[key] = [arrays[f"{part}/{key}/{index}"] for index in range(value["arrays"])]
