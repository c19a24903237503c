"""The files of a backup: the last finished epoch, written so that a kill at any instant
leaves a complete one, in a folder the backup owns, and removed file by file (never a file
it did not write)."""

from __future__ import annotations

import contextlib
import json
import os
import re

import numpy as np

from keras_recipes import _io
from keras_recipes import _validation as v

__all__ = ["MARKER", "METADATA", "BackupFolder", "differing"]

# Keras's name, so that a folder Keras's own BackupAndRestore wrote still loads.
METADATA = "training_metadata.json"
# Says the folder is a keras-recipes backup, and of which run.
MARKER = "keras_recipes_backup.json"
_WEIGHTS = re.compile(r"epoch_\d+\.weights\.h5")
_STATE = re.compile(r"epoch_\d+\.state\.npz")
# What `_io.atomic_path` writes before renaming into place (a kill can leave one).
_TEMPORARY = re.compile(r"\..+\.(tmp|h5|npz|json)$")


def differing(saved, now, prefix=""):
    """The first setting that differs between two run records: `(key, saved, now)`."""
    for key in sorted(set(saved) | set(now)):
        before, after = saved.get(key), now.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            found = differing(before, after, f"{prefix}{key}.")
            if found:
                return found
        elif before != after:
            return f"{prefix}{key}", before, after
    return None


class BackupFolder:
    """One backup folder: each epoch's weights (with the optimizer state) and the state of
    the callbacks that must survive a restart.

    An epoch is written in this order: its weights to a new file, then its arrays of
    callback state (best weights, ...) to a new file, each renamed into place once
    complete; then the metadata (the epoch, those files' names and the callbacks'
    other state), replaced in one rename; only then are the previous epoch's files
    removed. A kill at any instant leaves the metadata of the last complete epoch and
    the files it names.

    The folder is the backup's own: `claim` refuses one that holds anything else (a
    file of yours is never overwritten or removed), and marks it with the record of
    the run it backs up, so that a run started again with other settings is refused
    rather than resumed from the wrong backup.

    Args:
        folder: str, the folder (created when the first epoch is written).
        own: iterable of str, more names the folder may hold (those of a `fine_tune`
            run's folder).
    """

    def __init__(self, folder, own=()):
        self.folder = os.fspath(folder)
        self.own = set(own)

    def claim(self, run=None, setting="backup_dir"):
        """Checks that the folder may hold this run's backup.

        Args:
            run: dict or None, what identifies the run (its settings, model, data);
                the backup of another run is refused.
            setting: str, the name the errors give the folder (`backup_dir`, or a
                config key).

        Returns:
            dict, the record `mark` wrote for the backed-up run when the folder holds
            an epoch to resume from, else None.

        Raises:
            ValueError: for a folder holding files the backup did not write, or the
                backup of a run with other settings (named, with how to start afresh).
        """
        if not os.path.isdir(self.folder):
            return None
        foreign = sorted(name for name in os.listdir(self.folder) if not self._owns(name))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            v.fail(setting, self.folder, "a folder of the backup's own (missing, empty or "
                   "holding a keras-recipes backup)",
                   hint=f"(it holds {shown}, which the backup would mix with its files; "
                        "give the backup a folder of its own)")
        if self.metadata() is None:
            return None
        record = self._read(MARKER) or {}
        found = None if run is None or record.get("run") is None else differing(
            record["run"], run)
        if found:
            key, before, after = found
            v.fail(setting, self.folder, "the backup of this same run to resume it",
                   hint=f"(its run had {key}={before!r}, this one has {key}={after!r}; start "
                        "it with the same settings to resume, or delete the folder to start "
                        "afresh)")
        return record

    def mark(self, record):
        """Writes the record of the run the folder backs up (JSON: its settings, ...)."""
        _io.write_text(self._path(MARKER), json.dumps(record))

    def _owns(self, name):
        return (name in (METADATA, MARKER) or name in self.own or _WEIGHTS.fullmatch(name)
                or _STATE.fullmatch(name) or _TEMPORARY.fullmatch(name))

    def _read(self, name):
        path = self._path(name)
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as file:
            return json.load(file)

    def _path(self, name):
        return os.path.join(self.folder, name)

    def metadata(self):
        """The metadata of the last complete epoch, or None."""
        return self._read(METADATA)

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
        for name in (METADATA, MARKER):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._path(name))
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)

    def _remove_own(self, keep):
        for name in os.listdir(self.folder):
            if name not in keep and (_WEIGHTS.fullmatch(name) or _STATE.fullmatch(name)
                                     or _TEMPORARY.fullmatch(name)):
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
