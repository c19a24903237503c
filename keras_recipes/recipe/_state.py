"""The recipe's state during one `fit`, owned in one place: what the callbacks must remember
between epochs, saved with the weights after each epoch and given back to a resumed run."""

from __future__ import annotations

import keras

from keras_recipes import _keras_internals as ki
from keras_recipes.callbacks._backup_folder import BackupFolder
from keras_recipes.callbacks.resumable import Resumable

__all__ = ["RecipeState"]


class RecipeState(keras.callbacks.Callback):
    """Owns the state of a `fit` that must survive between epochs and across a restart.

    Its parts are the `Resumable` callbacks of the `fit` (early stopping, the
    plateau schedule, `fine_tune`'s guard, ...). With a backup folder, after each
    epoch -- once every part has acted on it -- it writes the weights, the
    optimizer state and every part's state; when a killed run is started again, it
    loads them back once every part has begun the `fit` (and so reset itself),
    and the run goes on from the epoch after the last one written. It must come
    after its parts in the callback list; `Recipe.callbacks` puts it there.

    Args:
        parts: list of `Resumable` callbacks.
        backup_dir: str or None, the backup folder; None keeps nothing on disk.
    """

    def __init__(self, parts, backup_dir=None):
        super().__init__()
        self.parts = _named(parts)
        self.backup = None if backup_dir is None else BackupFolder(backup_dir)
        self.resumed_at = None  # the epoch (from 0) a restored run resumed at

    def get_state(self):
        """dict, each part's state by name."""
        return {name: part.get_state() for name, part in self.parts.items()}

    def set_state(self, state):
        """Gives each part its state (parts missing from `state` keep theirs)."""
        for name, part in self.parts.items():
            if name in state:
                part.set_state(state[name])

    def on_train_begin(self, logs=None):
        self.resumed_at = None
        if self.backup is None:
            return
        if self.backup.metadata() is not None and not self.model.built:
            raise ValueError(f"The model must be built before `fit` can restore the backup in "
                             f"{self.backup.folder!r}. Received: an unbuilt model "
                             f"{self.model.name!r}")
        restored = self.backup.restore(self.model)
        if restored is not None:
            epoch, state = restored
            self.set_state(state)
            ki.set_initial_epoch(self.model, epoch)
            self.resumed_at = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.backup is not None:
            self.backup.save(self.model, epoch + 1, self.get_state())

    def on_train_end(self, logs=None):
        if self.backup is not None:
            self.backup.remove()


def _named(parts):
    named = {}
    for part in parts:
        if not isinstance(part, Resumable):
            raise TypeError(f"{part!r} is not a keras_recipes.callbacks.Resumable callback")
        name = type(part).__name__
        index = sum(1 for other in named if other.split("#")[0] == name)
        named[name if index == 0 else f"{name}#{index}"] = part
    return named
