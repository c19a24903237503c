"""Resuming an interrupted `fine_tune`: the backup folder of a run, and the history
of the epochs finished before the interruption."""

from __future__ import annotations

import contextlib
import json
import os

import keras

from keras_recipes import _io, _processes
from keras_recipes import _validation as v
from keras_recipes.callbacks._backup_folder import BackupFolder

__all__ = [
    "PhaseBackup",
    "history_from_state",
]


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _write_json(path, content):
    """Writes `content` so that a crash leaves the old file or the new one, never half."""
    _io.write_text(path, json.dumps(content))


class PhaseBackup:
    """The backup folder of a `fine_tune` run: what lets an interrupted run resume.

    Layout of `backup_dir`:

    - `phase_1/`, `phase_2/`: each phase's recipe backup (`RecipeState`: weights,
      optimizer state, the callbacks' state and the epoch of the last finished
      epoch -- its logs too, so that the resumed phase's history is whole --
      removed when the phase's `fit` ends).
    - `phase_2_start.weights.h5` and `fine_tune.json`, written once phase 1 has
      ended and phase 2 is set up (top of the base unfrozen, new optimizer
      compiled): the model as phase 2 starts, and phase 1's history, phase 2's
      learning rate and the run's arguments. Their presence means "phase 1 is
      done": a new run skips it, loads the weights and goes on with phase 2,
      whose own backup then restores its last finished epoch.

    Everything is removed when the run finishes. On several processes the first writes
    and removes the files, all read them.
    """

    STATE = "fine_tune.json"
    START = "phase_2_start.weights.h5"
    FORMAT = 1

    def __init__(self, folder, run):
        self.folder = folder
        self.run = dict(run, format=self.FORMAT)

    def claim(self):
        """Refuses a folder holding files this run did not write (see `BackupFolder`)."""
        if _processes.is_writer():
            BackupFolder(self.folder, own=("phase_1", "phase_2", self.STATE, self.START)).claim()
        _processes.barrier("keras_recipes.fine_tune.claimed")

    def _path(self, *parts):
        return os.path.join(self.folder, *parts)

    def phase_folder(self, phase):
        return self._path(f"phase_{phase}")

    def phase_one_done(self):
        """The state saved when phase 1 ended, or None; checks it is this run's."""
        state = _read_json(self._path(self.STATE))
        if state is None or not os.path.isfile(self._path(self.START)):
            return None
        if state.get("run") != self.run:
            saved = ", ".join(f"{k}={state.get('run', {}).get(k)!r}" for k in sorted(self.run)
                              if k != "format")
            v.fail("backup_dir", self.folder,
                   "a folder holding no backup, or the backup of the same fine_tune run",
                   hint=f"(it holds a run with {saved}; pass the same arguments to resume it, "
                   "or delete the folder to start again)")
        return state

    def save_phase_two_start(self, model, fine_tune_learning_rate, phase_one,
                             phase_one_epoch=None):
        """Saves the model as phase 2 starts; from then on phase 1 counts as done.
        `phase_one_epoch`: the epoch of phase 1 (from 0) whose weights the model holds."""
        if not _processes.is_writer():
            _processes.join_save(model)
            return
        _io.save_weights(model, self._path(self.START))
        _write_json(self._path(self.STATE), {
            "run": self.run,
            "fine_tune_learning_rate": fine_tune_learning_rate,
            "phase_1_kept_epoch": phase_one_epoch,
            "phase_1": None if phase_one is None else {
                "history": {key: [None if value is None else float(value) for value in values]
                            for key, values in phase_one.history.items()},
                "epoch": [int(epoch) for epoch in phase_one.epoch],
                "params": phase_one.params},
        })

    def load_phase_two_start(self, model):
        model.load_weights(self._path(self.START))

    def start_phase_two(self, model, resumed, fine_tune_learning_rate, phase_one,
                        phase_one_epoch=None):
        """Phase 2's starting point, once its optimizer is compiled: loaded when `resumed`
        (the state `phase_one_done` returned), else saved."""
        if resumed is not None:
            self.load_phase_two_start(model)
        else:
            self.save_phase_two_start(model, fine_tune_learning_rate, phase_one,
                                      phase_one_epoch)

    def finish(self):
        """Removes the run's files, and its folders when nothing else is in them."""
        if not _processes.is_writer():
            return
        for name in (self.STATE, self.START):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._path(name))
        for folder in (self.phase_folder(1), self.phase_folder(2), self.folder):
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def history_from_state(model, saved):
    """A `History` rebuilt from what `save_phase_two_start` wrote."""
    history = keras.callbacks.History()
    history.set_model(model)
    history.history = {key: list(values) for key, values in saved["history"].items()}
    history.epoch = list(saved["epoch"])
    history.params = dict(saved["params"] or {})
    return history
