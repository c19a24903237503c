"""A `BackupAndRestore` whose backup survives a kill at any instant."""

from __future__ import annotations

import json
import os

import keras

from keras_recipes import _io
from keras_recipes import _keras_internals as ki

__all__ = ["AtomicBackupAndRestore"]

_METADATA = "training_metadata.json"  # Keras's name: a folder Keras's callback wrote still loads


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras's `BackupAndRestore` (once an epoch), written so that a kill never breaks it.

    Why not Keras's own: Keras 3.15 writes `latest.weights.h5` in place and the epoch
    (`training_metadata.json`) after it. A SIGKILL, an out-of-memory kill or a pre-empted
    machine during the write leaves a truncated HDF5 file, and the run started again fails
    (`OSError: Unable to synchronously open file (truncated file ...)`); a kill between the
    two files resumes an epoch early on weights an epoch ahead. Here each epoch's weights go
    to a new file, renamed into place once complete; then the metadata, which names that
    file, is replaced in one rename; only then is the previous weights file removed. A kill
    at any instant leaves the last complete epoch's backup, and resuming loads exactly it.
    Still needed with Keras 3.16: the nightly's (3.16.0.dev2026102704) `BackupAndRestore` is the
    same as 3.15.1's (its `double_checkpoint` copy helps only when loading raises).

    The recipes use it for `backup_dir=`; pass your own `keras.callbacks.BackupAndRestore`
    to `fit` to save every few batches instead (Keras's format, Keras's guarantees).

    Args:
        backup_dir: str, the folder of the backup; removed when `fit` completes.
    """

    def __init__(self, backup_dir):
        super().__init__(os.fspath(backup_dir), save_freq="epoch", delete_checkpoint=True)

    def _file(self, name):
        return os.path.join(self.backup_dir, name)

    def on_train_begin(self, logs=None):
        metadata = self._file(_METADATA)
        if not os.path.isfile(metadata):
            return  # nothing backed up yet (a weights file alone is an epoch not finished)
        with open(metadata, encoding="utf-8") as file:
            state = json.load(file)
        if "weights" not in state:  # written by Keras's own callback
            return super().on_train_begin(logs)
        if not self.model.built:
            raise ValueError(f"The model must be built before `fit` can restore the backup in "
                             f"{self.backup_dir!r}. Received: an unbuilt model {self.model.name!r}")
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)  # its state is in the backup too
        self.model.load_weights(self._file(state["weights"]))
        ki.set_initial_epoch(self.model, state["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        name = f"epoch_{epoch + 1}.weights.h5"
        _io.save_weights(self.model, self._file(name))
        _io.write_text(self._file(_METADATA),
                       json.dumps({"epoch": epoch + 1, "batch": 0, "weights": name}))
        for other in os.listdir(self.backup_dir):
            if other.endswith(".weights.h5") and other != name and not other.startswith("."):
                os.remove(self._file(other))
