"""The recipe's state during one `fit`, owned in one place: what the callbacks must remember
between epochs, saved with the weights after each epoch and given back to a resumed run."""

from __future__ import annotations

import keras
import numpy as np

from keras_recipes import _keras_internals as ki
from keras_recipes import _processes
from keras_recipes.callbacks._backup_folder import BackupFolder
from keras_recipes.callbacks.resumable import Resumable

__all__ = ["RecipeState", "model_fingerprint"]


class RecipeState(keras.callbacks.Callback):
    """Owns the state of a `fit` that must survive between epochs and across a restart.

    Its parts are the `Resumable` callbacks of the `fit` (early stopping, the
    plateau schedule, `fine_tune`'s guard, ...) and what the run itself must keep:
    the logs of its finished epochs and the global random state (NumPy's, and
    PyTorch's on that backend, which unseeded dropout draws from). With a backup
    folder, after each epoch -- once every part has acted on it -- it writes the
    weights, the optimizer state and every part's state; when a killed run is
    started again with the same settings, it loads them back once every part has
    begun the `fit` (and so reset itself), and the run goes on from the epoch after
    the last one written, its `History` holding every epoch of the run. It must
    come after its parts in the callback list; `Recipe.callbacks` puts it there.

    The folder is the backup's own: one holding other files is refused, and so is
    the backup of a run with other settings (`prepare`).

    Args:
        parts: list of `Resumable` callbacks.
        backup_dir: str or None, the backup folder; None keeps nothing on disk.
        recipe: the `keras_recipes.Recipe` of the `fit`, or None; part of what
            identifies the run.
    """

    def __init__(self, parts, backup_dir=None, recipe=None):
        super().__init__()
        self.epochs = _EpochLogs()
        self.parts = _named(parts)
        self.parts.update(history=self.epochs, random=_GlobalRandomState())
        self.backup = None if backup_dir is None else BackupFolder(backup_dir)
        self.recipe = recipe
        self.resumed_at = None  # the epoch (from 0) a restored run resumed at
        self.order_seed = None  # the seed of the order of array batches, if the recipe orders
        self.record = {}  # what identifies the run (see `prepare`)
        self._prepared = False

    def get_state(self):
        """dict, each part's state by name."""
        return {name: part.get_state() for name, part in self.parts.items()}

    def set_state(self, state):
        """Gives each part its state (parts missing from `state` keep theirs)."""
        for name, part in self.parts.items():
            if name in state:
                part.set_state(state[name])

    def prepare(self, run):
        """Claims the backup folder for the run `run` describes, before `fit` starts.

        Args:
            run: dict, what identifies the run (JSON values): its settings, model and
                data. A backup of a run with other ones is refused.

        Returns:
            The epoch the run resumes at (from 0), or None when it starts afresh.

        Raises:
            ValueError: for a folder holding files the backup did not write, or the
                backup of another run (naming the setting that differs).
        """
        self._prepared = True
        record = None if self.backup is None else self.backup.claim(run)
        resumed = record is not None
        self.record = dict(record) if resumed else {"format": 1, "run": run}
        # One order for every process of a run on several (the first one's).
        seed = self.record.get("order_seed")
        self.record["order_seed"] = _processes.broadcast(_fresh_seed() if seed is None else seed)
        self.order_seed = self.record["order_seed"]
        if self.backup is not None and _processes.is_writer():
            self.backup.mark(self.record)
        _processes.barrier("keras_recipes.RecipeState.prepare")
        return self.backup.metadata()["epoch"] if resumed else None

    def remember(self, **items):
        """Keeps more of what identifies the run with its backup (e.g. the learning rate
        the range finder chose, which a resumed run uses instead of searching again)."""
        self.record.update(items)
        if self.backup is not None and _processes.is_writer():
            self.backup.mark(self.record)

    def complete(self, history):
        """`history` of a resumed `fit`, preceded by the epochs run before the restart."""
        earlier = [logs for epoch, logs in self.epochs.restored if epoch < self.resumed_at] \
            if self.resumed_at else []
        if not earlier:
            return history
        keys = list(history.history)
        for logs in earlier:
            keys += [key for key in logs if key not in keys]
        history.history = {key: [logs.get(key) for logs in earlier]
                           + list(history.history.get(key, [None] * len(history.epoch)))
                           for key in keys}
        history.epoch = list(range(len(earlier))) + list(history.epoch)
        return history

    def on_train_begin(self, logs=None):
        self.resumed_at = None
        if self.backup is None:
            return
        if not self._prepared:  # a model without the recipe's fit (fine_tune's phases)
            self.prepare(_run_of(self.model, self.params, self.recipe))
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
        self.epochs.record(epoch, logs)
        if self.backup is None:
            return
        if _processes.is_writer():  # one writer, all read
            self.backup.save(self.model, epoch + 1, self.get_state())
        else:
            _processes.join_save(self.model)

    def on_train_end(self, logs=None):
        if self.backup is not None and _processes.is_writer():
            self.backup.remove()


def model_fingerprint(model):
    """What identifies a model's architecture for a backup: the shapes and types of its
    weights, in order (a changed layer or size changes them; the layers' automatic
    names, which count up within a process, do not)."""
    return {"weights": [[list(w.shape), str(w.dtype)] for w in model.weights]}


def _run_of(model, params, recipe):
    """The record of a run known only from inside `fit`."""
    return {"model": model_fingerprint(model), "epochs": params.get("epochs"),
            "steps": params.get("steps"),
            "recipe": None if recipe is None else recipe.get_config()}


def _fresh_seed():
    # From the global generator, so that `keras.utils.set_random_seed` makes it repeatable.
    return int(np.random.randint(2**31 - 1))  # noqa: NPY002


class _EpochLogs(Resumable):
    """The logs of the run's finished epochs (those before a restart included)."""

    def __init__(self):
        self.logs, self.restored = [], []

    def record(self, epoch, logs):
        self.logs = [entry for entry in self.logs if entry[0] < epoch]
        self.logs.append((int(epoch), {key: float(value) for key, value in (logs or {}).items()
                                       if np.ndim(value) == 0}))

    def get_state(self):
        return {"epochs": [epoch for epoch, _ in self.logs],
                "logs": [logs for _, logs in self.logs]}

    def set_state(self, state):
        self.logs = list(zip(state["epochs"], state["logs"]))
        self.restored = list(self.logs)


class _GlobalRandomState(Resumable):
    """The global random generators a run draws from between epochs: NumPy's (Keras
    shuffles arrays with it on JAX and PyTorch) and, on PyTorch, torch's (unseeded
    dropout draws its masks from it)."""

    def get_state(self):
        kind, keys, position, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (Keras's)
        state = {"numpy": [np.asarray(keys)],
                 "numpy_position": [int(position), int(has_gauss), float(cached)]}
        if keras.backend.backend() == "torch":
            import torch

            state["torch"] = [torch.get_rng_state().numpy()]
        return state

    def set_state(self, state):
        position, has_gauss, cached = state["numpy_position"]
        keys = np.asarray(state["numpy"][0], dtype=np.uint32)
        legacy = ("MT19937", keys, int(position), int(has_gauss), float(cached))
        np.random.set_state(legacy)  # noqa: NPY002 (the generator Keras draws from)
        if "torch" in state and keras.backend.backend() == "torch":
            import torch

            torch.set_rng_state(torch.from_numpy(np.asarray(state["torch"][0])))


def _named(parts):
    named = {}
    for part in parts:
        if not isinstance(part, Resumable):
            raise TypeError(f"{part!r} is not a keras_recipes.callbacks.Resumable callback")
        name = type(part).__name__
        index = sum(1 for other in named if other.split("#")[0] == name)
        named[name if index == 0 else f"{name}#{index}"] = part
    return named
