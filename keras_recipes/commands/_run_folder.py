"""A run's output folder is its own: never a finished run's, never shared by two live runs,
and resumed only by a run with the same settings."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib

__all__ = ["RunFolder", "RunFolderError", "default_name"]

_LOCK = ".keras_recipes.lock"
_SETTINGS = "config.yaml"
_METRICS = "metrics.json"
# A run that ended with these is finished: its folder is not written again.
_FINISHED = ("completed", "diverged")


class RunFolder:
    """The output folder of one `keras-recipes` run.

    `claim` makes it (a default name gets a suffix rather than collide with another
    run's, even within a second), refuses a folder holding a finished run, and locks
    it for the life of the process (an OS lock, released however the process ends,
    `kill -9` included), so that a second live run into it is refused. `resume_check`
    refuses to resume a backup made with other settings.

    Args:
        path: str or Path, the folder.
        chosen: bool, whether the user named it (`--output`); a default name that
            exists already is replaced by a fresh one instead of refused.
    """

    def __init__(self, path, chosen):
        self.path = pathlib.Path(path)
        self.chosen = chosen
        self._lock = None
        self._wrote_settings = False  # config.yaml is this run's (no earlier run's before)

    def claim(self):
        """Makes and locks the folder; returns its path.

        Raises:
            RunFolderError: for a finished run's folder, or one another run holds.
        """
        if not self.chosen:
            self.path = _fresh(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        status = _finished_status(self.path)
        if status is not None:
            raise RunFolderError(f"--output {self.path}: it holds a finished run ({_METRICS}: "
                                 f"status {status}); choose another folder (or delete it to "
                                 "run again)")
        self._lock = _lock(self.path / _LOCK)
        if self._lock is None:
            raise RunFolderError(f"--output {self.path}: another keras-recipes run is writing "
                                 "to it; wait for it to end or choose another folder")
        return self.path

    def check(self):
        """`claim`'s refusals, read-only and without the lock: for the processes of a run on
        several that do not write its files (the first one claims it)."""
        status = _finished_status(self.path) if self.path.is_dir() else None
        if status is not None:
            raise RunFolderError(f"--output {self.path}: it holds a finished run ({_METRICS}: "
                                 f"status {status}); choose another folder (or delete it to "
                                 "run again)")
        return self.path

    def abandon(self):
        """Undoes `claim` and `write_settings` for a run that failed to start: removes
        what it wrote, and the folder when nothing else is in it."""
        if self._wrote_settings:
            with contextlib.suppress(OSError):
                (self.path / _SETTINGS).unlink()
        self.release()
        with contextlib.suppress(OSError):
            self.path.rmdir()

    def release(self):
        """Unlocks the folder and removes the lock file (a killed run's stays behind,
        unlocked: the OS lock ends with the process)."""
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.path / _LOCK).unlink()
            self._lock.close()
            self._lock = None

    def resume_check(self, settings, backup_dir):
        """Refuses to resume `backup_dir` with settings other than its run's.

        Args:
            settings: dict, the resolved config (`recipe`, `seed`, `dataset`, `model`,
                `fit`, `report`).
            backup_dir: str or None, the run's backup folder.

        Raises:
            RunFolderError: naming the first setting that differs, the folder, and how
                to start afresh.
        """
        saved = self._saved_settings()
        if backup_dir is None or saved is None or not _holds_a_backup(backup_dir):
            return
        from keras_recipes.callbacks._backup_folder import differing

        found = differing(_training_settings(saved), _training_settings(settings))
        if found:
            key, before, after = found
            raise RunFolderError(
                f"{backup_dir} holds the backup of a run with {key}={before!r}; this run has "
                f"{key}={after!r}. Start it with the same settings to resume, or delete "
                f"{backup_dir} to start afresh")

    def write_settings(self, settings):
        """Writes the resolved config before training (a rerun compares with it)."""
        import yaml

        from keras_recipes import _io

        self._wrote_settings = self._saved_settings() is None
        _io.write_text(self.path / _SETTINGS, yaml.safe_dump(settings, sort_keys=False))

    def _saved_settings(self):
        path = self.path / _SETTINGS
        if not path.is_file():
            return None
        import yaml

        try:
            saved = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            return None
        return saved if isinstance(saved, dict) else None


class RunFolderError(Exception):
    """An output folder a run may not write to; the message says why and what to do."""


def _fresh(path):
    """`path`, or `path-2`, `path-3`, ... : the first that no run has made yet."""
    candidate, number = path, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            number += 1
            candidate = path.with_name(f"{path.name}-{number}")


def default_name(recipe):
    """`runs/<recipe>-<date>-<time>`, made unique by `RunFolder.claim`."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return pathlib.Path("runs") / f"{recipe}-{stamp}"


def _finished_status(path):
    metrics = path / _METRICS
    if not metrics.is_file():
        return None
    try:
        status = json.loads(metrics.read_text(encoding="utf-8")).get("status")
    except (ValueError, AttributeError):
        return "unreadable"
    return status if status in _FINISHED else None


def _lock(path):
    """An exclusive OS lock on `path`, held until the process ends; None when another
    process holds it. (Where the OS has no `fcntl`, no lock is taken.)"""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return open(path, "a+")  # noqa: SIM115 - no lock, but released as one
    handle = open(path, "a+")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _holds_a_backup(folder):
    folder = pathlib.Path(folder)
    return folder.is_dir() and any(folder.iterdir())


def _training_settings(settings):
    """The settings a run's training depends on (not the report's, nor the `backend`
    setting: `auto` was absent from the runs of earlier versions, and the weights and
    optimizer state of a backup load on every backend)."""
    return {key: value for key, value in settings.items() if key not in ("report", "backend")}
