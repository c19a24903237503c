"""A `BackupAndRestore` whose backup survives a kill at any instant."""

from __future__ import annotations

import os

import keras

from keras_recipes import _keras_internals as ki
from keras_recipes.callbacks._backup_folder import BackupFolder

__all__ = ["AtomicBackupAndRestore"]


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
    same as 3.15.1's (its `double_checkpoint` copy helps only when loading raises). And when
    `fit` completes it removes the files it wrote, not the whole folder as Keras's does.

    The recipes keep their backup with their own callbacks' state (see
    `keras_recipes.Recipe`); pass this to any model's `fit` for the weights alone, or
    your own `keras.callbacks.BackupAndRestore` to save every few batches (Keras's
    format, Keras's guarantees).

    Args:
        backup_dir: str, the folder of the backup.

    Example:

    >>> import keras_recipes
    >>> backup = keras_recipes.callbacks.AtomicBackupAndRestore("/tmp/my_backup")
    """

    def __init__(self, backup_dir):
        super().__init__(os.fspath(backup_dir), save_freq="epoch", delete_checkpoint=True)
        self._files = BackupFolder(self.backup_dir)

    def on_train_begin(self, logs=None):
        metadata = self._files.metadata()
        if metadata is not None and "weights" not in metadata:  # written by Keras's own
            return super().on_train_begin(logs)
        if metadata is not None and not self.model.built:
            raise ValueError(f"The model must be built before `fit` can restore the backup in "
                             f"{self.backup_dir!r}. Received: an unbuilt model {self.model.name!r}")
        restored = self._files.restore(self.model)
        if restored is not None:
            ki.set_initial_epoch(self.model, restored[0])

    def on_epoch_end(self, epoch, logs=None):
        self._files.save(self.model, epoch + 1)

    def on_train_end(self, logs=None):
        self._files.remove()
