"""What `fine_tune` does between and around its two `fit` calls."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re

import keras

from keras_recipes import _validation as v
from keras_recipes.callbacks.one_cycle_span import component_optimizers, is_multi_optimizer
from keras_recipes.models import _blocks as blocks
from keras_recipes.schedules.one_cycle import OneCycle

_MultiOptimizer = getattr(keras.optimizers, "MultiOptimizer", None)
_OptimizerMap = getattr(keras.optimizers, "OptimizerMap", None)


def find_base(model):
    """The one nested model of `model`: the base of a transfer model."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        found = ("no nested model" if not nested else
                 f"{len(nested)} nested models: " + ", ".join(repr(m.name) for m in nested))
        v.fail("model", model.name,
               "a model built by `build_transfer_model`, or a model with exactly one nested "
               "base model (called as `base(x, training=False)`)",
               hint=f"(it has {found})")
    return nested[0]


def all_layers(layer):
    """`layer` and every layer inside it, parents before children."""
    return layer._flatten_layers(include_self=True, recursive=True)


def own_layers(base):
    """The top-level layers of `base`, bottom to top, without its input layers."""
    return [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]


def select_layers(base, unfreeze):
    """The top layers of `base` that `unfreeze` names (bottom to top)."""
    layers = own_layers(base)
    count = len(layers)
    if isinstance(unfreeze, str):
        if unfreeze.lower() == "all":
            return layers
        names = [layer.name for layer in layers]
        if unfreeze not in names:
            v.fail("unfreeze", unfreeze,
                   f'"all" or the name of a layer of the base {base.name!r} to unfreeze from',
                   hint=v.did_you_mean(unfreeze, {n: n for n in names}))
        return layers[names.index(unfreeze):]
    if isinstance(unfreeze, bool) or not isinstance(unfreeze, (int, float)):
        v.fail("unfreeze", unfreeze,
               'an int (layers), a float in (0, 1] (fraction of layers), a layer name or "all"',
               error=TypeError)
    if isinstance(unfreeze, int):
        v.check_int("unfreeze", unfreeze, min_value=1, max_value=count)
        return layers[count - unfreeze:]
    v.check_number("unfreeze", unfreeze, low=0, high=1, low_inclusive=False)
    # A fraction counts the layers fine-tuning can train (with weights, BatchNorm aside,
    # which stays frozen), so that the top 30% of a small base is never just its pooling.
    trainable = [i for i, layer in enumerate(layers)
                 if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)]
    if not trainable:
        return layers[count - math.ceil(unfreeze * count):]
    return layers[trainable[-math.ceil(unfreeze * len(trainable))]:]


def freeze(base):
    base.trainable = False


def unfreeze_top(base, selected):
    """Makes `selected` trainable and everything else in `base`, and every BatchNorm, frozen."""
    base.trainable = True
    chosen = {id(layer) for layer in selected}
    for layer in own_layers(base):
        if id(layer) not in chosen:
            layer.trainable = False
    for layer in all_layers(base):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def trainable_flags(model):
    return [(layer, layer.trainable) for layer in all_layers(model)]


def restore_flags(flags):
    for layer, trainable in flags:  # parents first, so children keep their own flag
        layer.trainable = trainable


# --- optimizers -------------------------------------------------------------------------


def optimizer_kind(optimizer):
    """The name in `blocks.OPTIMIZERS` of an optimizer's class, or None."""
    if is_multi_optimizer(optimizer):
        optimizer = optimizer._optimizer_map.default_optimizer if hasattr(
            optimizer._optimizer_map, "default_optimizer") else optimizer.optimizers[0]
    name = type(optimizer).__name__.lower()
    return name if name in blocks.OPTIMIZERS else None


def peak_learning_rate(optimizer):
    """The highest learning rate an optimizer can run at, or None when unknown."""
    peaks = []
    for inner in component_optimizers(optimizer):
        rate = inner._learning_rate
        if isinstance(rate, OneCycle):
            peaks.append(rate.max_learning_rate)
        elif isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            return None
        else:
            peaks.append(float(keras.ops.convert_to_numpy(rate)))
    return max(peaks) if peaks else None


def fresh_copy(optimizer):
    """An unused optimizer with the same configuration."""
    return keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))


def recompile(model, optimizer):
    """Compiles `model` again with `optimizer`, keeping its loss, metrics and settings."""
    config = keras.saving.deserialize_keras_object(model.get_compile_config())
    config["optimizer"] = optimizer
    model.compile(**config)


def discriminative_optimizer(model, base, kind, learning_rate, one_cycle, clipnorm,
                             factor, groups):
    """A `MultiOptimizer`: the head at `learning_rate`, lower base groups lower.

    The trainable layers of the base are split, bottom to top, into `groups`
    consecutive groups; group `k` from the top trains at
    `learning_rate * factor**k`.

    Returns:
        `(optimizer, auto_one_cycle, rates)` with `rates` the learning rate of
        each group, top first.
    """
    layers = [layer for layer in own_layers(base) if layer.trainable_weights]
    groups = min(groups, len(layers))
    bounds = [round(i * len(layers) / groups) for i in range(groups + 1)]
    chunks = [layers[bounds[i]:bounds[i + 1]] for i in range(groups)][::-1]  # top first
    paths = [variable.path for variable in model.trainable_variables]
    duplicated = sorted({p for p in paths if paths.count(p) > 1})
    if duplicated:
        v.fail("discriminative_factor", factor,
               "None for a model whose trainable variables do not have unique paths",
               hint=f"(MultiOptimizer maps variables by path, and {duplicated[:3]} occur more "
               "than once; give those layers distinct names)")
    head, auto = blocks.build_optimizer(kind, learning_rate, one_cycle, None, clipnorm)
    optimizer_map = _OptimizerMap(head)
    rates = []
    for k, chunk in enumerate(chunks, start=1):
        rate = learning_rate * factor**k
        rates.append(rate)
        group, _ = blocks.build_optimizer(kind, rate, one_cycle, None, clipnorm)
        for layer in chunk:
            for variable in layer.trainable_weights:
                # Escaped, so that the pattern matches this path and no other.
                optimizer_map[re.escape(variable.path)] = group
    return _MultiOptimizer(optimizer_map), auto, rates


# --- history ------------------------------------------------------------------------------


def combined_history(model, histories):
    """One `History` from the phases' `(phase, history)`, with a `"phase"` entry per epoch."""
    combined = keras.callbacks.History()
    combined.set_model(model)
    keys = []
    for _, history in histories:
        keys += [key for key in history.history if key not in keys]
    combined.history = {key: [] for key in keys}
    combined.history["phase"] = []
    combined.params = {}
    for phase, history in histories:
        epochs = len(history.epoch)
        for key in keys:
            combined.history[key] += list(history.history.get(key, [None] * epochs))
        combined.history["phase"] += [phase] * epochs
        combined.params[f"phase_{phase}"] = dict(history.params or {})
    combined.epoch = list(range(len(combined.history["phase"])))
    return combined


# --- distribution -------------------------------------------------------------------------


def _own_distribution(model):
    """The distribution `model` was built in, or None.

    TensorFlow records the `tf.distribute.Strategy` whose scope was active when
    a model was created; a `RecipeModel` built with a `keras.distribution`
    distribution (JAX) keeps that distribution's scope.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return getattr(model, "_distribute_strategy", None)
    if backend == "jax":
        owner = getattr(getattr(model, "_distribution_scope", None), "__self__", None)
        return owner if blocks._is_keras_distribution(owner) else None
    return None


def _variables_live_on(model, distribution):
    """Whether a JAX model's variables live on the devices of `distribution`'s mesh
    (as when they are created in its scope; outside, they live on one device)."""
    devices = set(distribution.device_mesh.backend_mesh.devices.flat)
    for variable in model.variables:
        sharding = getattr(getattr(variable, "value", None), "sharding", None)
        if sharding is not None and set(sharding.device_set) != devices:
            return False
    return True


def distribution_scope(model, distribution):
    """The scope in which `fine_tune` creates its optimizers, recompiles and trains.

    `None` takes the distribution the model was built in (none: no scope). A
    given distribution is validated and must be the one the model was built in:
    its variables cannot move into another one.

    Returns:
        A zero-argument function returning a context manager.
    """
    own = _own_distribution(model)
    if distribution is None:
        return own.scope if own is not None else contextlib.nullcontext
    scope = blocks.distribution_scope(distribution)  # type and backend
    if own is not None and own is not distribution:
        v.fail("distribution", distribution, "None or the distribution the model was built in",
               hint=f"(the model was built in {own!r})")
    if own is None and not (keras.backend.backend() == "jax"
                            and _variables_live_on(model, distribution)):
        v.fail("distribution", distribution, "None for a model built outside a distribution",
               hint="(its variables were not created in the distribution's scope; build it "
               "with build_transfer_model(..., distribution=...), or inside "
               "`distribution.scope()`)")
    return scope


# --- resuming an interrupted fine_tune ----------------------------------------------------


def check_backup_dir(backup_dir):
    """None or a folder path, as a str."""
    if backup_dir is None:
        return None
    if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
        v.fail("backup_dir", backup_dir, "None or a folder path", error=TypeError)
    return os.fspath(backup_dir)


class _EpochLog(keras.callbacks.Callback):
    """Writes each finished epoch's logs to a JSON file (before the epoch's backup)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        entries = _read_json(self.path) or {}
        entries[str(epoch)] = {key: float(value) for key, value in (logs or {}).items()}
        _write_json(self.path, entries)


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _write_json(path, content):
    """Writes `content` so that a crash leaves the old file or the new one, never half."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(content, file)
    os.replace(temporary, path)


class PhaseBackup:
    """The backup folder of a `fine_tune` run: what lets an interrupted run resume.

    Layout of `backup_dir`:

    - `phase_1/`, `phase_2/`: each phase's `keras.callbacks.BackupAndRestore`
      folder (weights, optimizer state and epoch of the last finished epoch),
      plus `history.json`, the logs of its finished epochs. Keras deletes the
      folder when its `fit` ends.
    - `phase_2_start.weights.h5` and `fine_tune.json`, written once phase 1 has
      ended and phase 2 is set up (top of the base unfrozen, new optimizer
      compiled): the model as phase 2 starts, and phase 1's history, phase 2's
      learning rate and the run's arguments. Their presence means "phase 1 is
      done": a new run skips it, loads the weights and goes on with phase 2,
      whose own backup then restores its last finished epoch.

    Everything is removed when the run finishes.
    """

    STATE = "fine_tune.json"
    START = "phase_2_start.weights.h5"
    FORMAT = 1

    def __init__(self, folder, run):
        self.folder = folder
        self.run = dict(run, format=self.FORMAT)

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

    def callbacks(self, phase):
        """The callbacks backing up `phase`: its epoch log, then Keras's BackupAndRestore."""
        folder = self.phase_folder(phase)
        return [_EpochLog(os.path.join(folder, "history.json")),
                keras.callbacks.BackupAndRestore(folder)]

    def logged_epochs(self, phase):
        """The logs of the epochs of `phase` finished before an interruption."""
        entries = _read_json(os.path.join(self.phase_folder(phase), "history.json")) or {}
        return {int(epoch): logs for epoch, logs in entries.items()}

    def save_phase_two_start(self, model, fine_tune_learning_rate, phase_one):
        """Saves the model as phase 2 starts; from then on phase 1 counts as done."""
        os.makedirs(self.folder, exist_ok=True)
        temporary = self._path("phase_2_start.tmp.weights.h5")
        model.save_weights(temporary, overwrite=True)
        os.replace(temporary, self._path(self.START))
        _write_json(self._path(self.STATE), {
            "run": self.run,
            "fine_tune_learning_rate": fine_tune_learning_rate,
            "phase_1": None if phase_one is None else {
                "history": {key: [None if value is None else float(value) for value in values]
                            for key, values in phase_one.history.items()},
                "epoch": [int(epoch) for epoch in phase_one.epoch],
                "params": phase_one.params},
        })

    def load_phase_two_start(self, model):
        model.load_weights(self._path(self.START))

    def finish(self):
        """Removes the run's files, and the folder when nothing else is in it."""
        for name in (self.STATE, self.START):
            if os.path.isfile(self._path(name)):
                os.remove(self._path(name))
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)


def history_from_state(model, saved):
    """A `History` rebuilt from what `save_phase_two_start` wrote."""
    history = keras.callbacks.History()
    history.set_model(model)
    history.history = {key: list(values) for key, values in saved["history"].items()}
    history.epoch = list(saved["epoch"])
    history.params = dict(saved["params"] or {})
    return history


def with_logged_epochs(history, logged):
    """`history` of a resumed `fit`, preceded by the epochs finished before the interruption."""
    first = history.epoch[0] if history.epoch else (max(logged) + 1 if logged else 0)
    earlier = [epoch for epoch in sorted(logged) if epoch < first]
    if not earlier:
        return history
    keys = list(history.history)
    for epoch in earlier:
        keys += [key for key in logged[epoch] if key not in keys]
    merged = {key: [logged[epoch].get(key) for epoch in earlier]
              + list(history.history.get(key, [None] * len(history.epoch))) for key in keys}
    history.history = merged
    history.epoch = earlier + list(history.epoch)
    return history
