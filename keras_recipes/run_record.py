"""The record a command-line run keeps on disk: every finished epoch, continued on resume.

`keras-recipes train` passes `run_recorder(...)` to the recipe's training function, so that
the run folder's `history.csv` always holds every finished epoch, also after a `kill -9`,
and a run resumed from its backup continues that record instead of starting a new one.
"""

from __future__ import annotations

import pathlib

__all__ = ["run_recorder"]


def run_recorder(output, phases=None):
    """A callback keeping the run's record: each finished epoch, on disk as training goes.

    At each epoch end `history.csv` in `output` is rewritten (atomically) with
    every epoch finished so far, so a killed run loses at most the epoch in
    flight. The training function may call `fit` more than once (`fine_tune`:
    two phases, `phases` the phase of each call when nothing is resumed).

    A run resumed from its backup (`BackupAndRestore` starts the first `fit` at
    a later epoch, or `fine_tune` skips a finished phase 1) continues the
    record found in `history.csv`, reconciled by epoch number: the epochs
    before the one it resumes at are kept, a later one (recorded before the
    kill and not yet backed up, so trained again) is replaced. The recorder
    comes before the backup among the callbacks, so the record is never
    behind it; an epoch missing from the record anyway is left blank.
    """
    import keras

    from keras_recipes import _io, report

    path = pathlib.Path(output) / "history.csv"
    plan = list(phases) if phases else [None]

    def order(phase):
        return plan.index(phase) if phase in plan else len(plan)

    def earlier_rows():
        """The `(phase, epoch in the phase, logs)` of the record on disk."""
        history = report.history_from_csv(path.read_text()) if path.is_file() else None
        if not history:
            return []
        phase_column = history.pop("phase", None)
        count = len(next(iter(history.values()), []))
        rows, seen = [], {}
        for i in range(count):
            phase = phase_column[i] if phase_column and plan[0] is not None else plan[0]
            seen[phase] = seen.get(phase, -1) + 1
            rows.append((phase, seen[phase], {key: values[i] for key, values in history.items()
                                              if values[i] is not None}))
        return rows

    class Recorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.started = False
            self.optimizers, self.calls, self.rows = [], [], []
            self.resumed_at = None  # the epoch (from 1) this process resumed the run at

        def on_train_begin(self, logs=None):
            phase = getattr(self.model, "fine_tune_phase", None)
            if phase is None:
                phase = plan[min(len(self.calls), len(plan) - 1)]
            self.calls.append({"phase": phase, "ended": False, "first_epoch": None,
                               "early_stopping": getattr(self.model, "early_stopping", None)})
            self.started = True
            self.optimizers.append(self.model.optimizer)

        def on_epoch_begin(self, epoch, logs=None):
            call = self.calls[-1]
            if call["first_epoch"] is None:
                call["first_epoch"] = epoch
                self._continue_at(call["phase"], epoch, first_call=len(self.calls) == 1)

        def _continue_at(self, phase, epoch, first_call):
            """Keeps the recorded epochs before `epoch` of `phase`, the first one run now."""
            rows = self.rows
            if first_call:
                if not (epoch > 0 or order(phase) > 0):
                    return  # trained from the start: an earlier record is not this run's
                rows = earlier_rows()
            kept = [row for row in rows
                    if order(row[0]) < order(phase) or (row[0] == phase and row[1] < epoch)]
            done = sum(1 for row in kept if row[0] == phase)
            kept += [(phase, i, {}) for i in range(done, epoch)]  # not recorded: blank
            self.rows = kept
            if first_call:
                self.resumed_at = len(kept) + 1

        def on_epoch_end(self, epoch, logs=None):
            values = {key: float(value) for key, value in (logs or {}).items()}
            self.rows.append((self.calls[-1]["phase"], epoch, values))
            _io.write_text(path, report.history_csv(self.history()))

        def on_train_end(self, logs=None):
            call = self.calls[-1]
            if call["first_epoch"] is None and self.params.get("epochs"):
                # Resumed after its last epoch was backed up: no epoch left to run.
                call["first_epoch"] = self.params["epochs"]
                self._continue_at(call["phase"], call["first_epoch"],
                                  first_call=len(self.calls) == 1)
            call["ended"] = True

        def history(self):
            """The per-epoch history of the whole run; phased runs get a `"phase"` entry."""
            keys = []
            for _, _, values in self.rows:
                keys += [key for key in values if key not in keys]
            history = {key: [values.get(key) for _, _, values in self.rows] for key in keys}
            if plan[0] is not None:
                history["phase"] = [phase for phase, _, _ in self.rows]
            return history

        def kept_weights(self, best=None):
            """`(epoch from 1, how)`: whose weights the model holds once training has ended
            normally; None otherwise.

            `how` is `"early_stopping"`, `"last_epoch"`, or, with `best` (the outcome of
            `fine_tune`'s guard, `history.params["best_weights"]`), which has the last
            word, `"best_of_both_phases"`; with no phase 1 to go back to, the guard's
            `(None, "phase_2_start")`: the weights phase 2 started from.
            """
            if not self.calls or not self.calls[-1]["ended"] or not self.rows:
                return None
            if best is not None:
                phase = best["phase"]
                epoch = best["phase_2_epoch"] if phase == 2 else best.get("phase_1_epoch")
                if epoch is None:
                    return None, "phase_2_start"
                return self._before(phase) + epoch + 1, "best_of_both_phases"
            call = self.calls[-1]
            stopping = call["early_stopping"]
            if (stopping is not None and stopping.restore_best_weights
                    and stopping.best_weights is not None):
                return self._before(call["phase"]) + stopping.best_epoch + 1, "early_stopping"
            return len(self.rows), "last_epoch"

        def _before(self, phase):
            """The number of recorded epochs of the phases before `phase`."""
            return sum(1 for row in self.rows if order(row[0]) < order(phase))

    return Recorder()
