"""`fine_tune`: trains a transfer model in two phases, the head, then the top of the base.

Read as a composition, in the spirit of fastai's `fine_tune`: check the arguments once
and take the recipe; freeze the base and fit the head with the recipe; unfreeze the top
of the base and fit again with the recipe at a lower rate; keep the better weights. The
schedule, callbacks and backup belong to the recipe (`keras_recipes.Recipe`), the
phases to `phases.fit_phase`, resuming to `resume.PhaseBackup`.
"""

from __future__ import annotations

from keras_recipes.training.fine_tune import phase_optimizers as opt
from keras_recipes.training.fine_tune.arguments import (
    DEPRECATED,
    check_callbacks,
    check_fine_tune_arguments,
    check_model,
    fit_data_arguments,
    phases_recipe,
)
from keras_recipes.training.fine_tune.distribution import distribution_scope
from keras_recipes.training.fine_tune.keep_best import KeepBest
from keras_recipes.training.fine_tune.phases import (
    PhaseRun,
    combined_history,
    fit_phase,
    kept_epoch,
    stopped_on_nan,
)
from keras_recipes.training.fine_tune.resume import PhaseBackup, history_from_state
from keras_recipes.training.fine_tune.selection import check_trainable, freeze, unfreeze_top

__all__ = ["fine_tune"]


def fine_tune(
    model, train_data, validation_data=None, *,
    head_epochs=5, epochs=10, unfreeze="all",  # the two phases
    learning_rate=None, fine_tune_learning_rate=None,  # their peak learning rates
    discriminative_factor=None, discriminative_groups=3,
    batch_size=None, steps_per_epoch=None, callbacks=None, recipe=None, verbose="auto",
    **deprecated,
):
    """Trains a transfer model in two phases: the head, then the top of the base.

    **Phase 1** freezes the base and trains the rest (the new head) for
    `head_epochs`: a randomly initialised head sends large gradients back,
    which would wreck the pretrained features if the base were trainable.
    **Phase 2** unfreezes the top `unfreeze` layers of the base, keeps every
    BatchNormalization layer frozen (a frozen BatchNormalization layer runs in
    inference mode in Keras 3, so its moving statistics never change),
    recompiles -- Keras only sees new `trainable` flags after `compile` -- at
    the lower `fine_tune_learning_rate` and trains for `epochs` more. Both
    phases train with the model's recipe (`model.recipe`, or `recipe=`), each
    on a new optimizer at its own learning rate: one `fit` each, with the
    recipe's callbacks (the 1cycle over the phase, early stopping when there is
    validation data, the NaN stop, the backup) and your `callbacks`; while it
    trains, `model.fine_tune_phase` is its number (1 or 2), for callbacks that
    tell the phases apart, and `model.recipe` the phase's recipe.

    With `discriminative_factor`, phase 2 uses discriminative learning rates
    (as in ULMFiT / fastai): the head trains at `fine_tune_learning_rate`, and
    the unfrozen base layers, split into `discriminative_groups` consecutive
    groups, at `fine_tune_learning_rate * discriminative_factor**k` for the
    `k`-th group from the top, through Keras's `keras.optimizers.MultiOptimizer`
    (present in Keras 3.15; with a Keras that lacks it, `discriminative_factor`
    raises a `ValueError` saying so).

    With the recipe's `backup_dir` (`build_transfer_model(backup_dir=...)`), a
    run that is killed and started again with the same call resumes where it
    was, in the phase it was in:

    - killed in phase 1: phase 1 goes on from its last finished epoch (weights,
      optimizer state, 1cycle position and early stopping's state restored by
      the recipe's backup), then phase 2 runs;
    - killed in phase 2: phase 1 is **not** run again. The model as it was
      when phase 2 started (head trained, top of the base unfrozen) is
      loaded, phase 2's optimizer is created as before, and phase 2 goes on
      from its last finished epoch (or from its start, when it was killed in
      its first epoch).

    The returned history covers the whole run, the epochs finished before the
    interruption included. A model built by `build_transfer_model` ends where
    an uninterrupted run does (its dropout layers' random state is saved
    too), given data in a fixed order: `fit` shuffles arrays anew each epoch,
    so after a resume their batches come in another order (a dataset's own
    order is kept). The files it wrote are removed when the run finishes; the
    folder must not hold the backup of a run with other epochs, `unfreeze` or
    model.

    **The best weights are kept.** With `validation_data`, the model as phase
    2 starts (the head trained on the frozen base) is scored once on it, and
    every phase-2 epoch by its `val_loss`; when phase 2 ends, the model takes
    the weights of the best of them -- the head's own when no phase-2 epoch
    beat them, so that fine-tuning never returns a model worse on validation
    than the head alone. `history.params["best_weights"]` says what was kept,
    and a line is printed when `verbose` and the weights were restored. (A
    resumed run keeps this promise too: the head's score, the best epoch and its
    weights are in the backup.) Without validation data nothing can be
    compared: the model is as phase 2's last epoch leaves it.

    The model stays compiled with the phase-2 optimizer, the top of the base
    trainable, ready to save or to train further; a recipe model's
    `model.recipe` is then the recipe at phase 2's learning rate.

    Args:
        model: a `keras.Model` built by `build_transfer_model`, or any
            compiled functional model with exactly one nested model (the base).
        train_data: a tuple `(x, y)` or `(x, y, sample_weight)` of arrays, or
            a dataset yielding `(x, y)` batches (`tf.data.Dataset`,
            `keras.utils.PyDataset`).
        validation_data: as `fit`'s: a tuple of arrays, a dataset, or None.
            Defaults to `None`.
        head_epochs: int >= 0, epochs of phase 1 (0 skips it, for a head
            that is already trained). Defaults to `5`.
        epochs: int >= 0, epochs of phase 2 (0 skips it). Defaults to `10`.
        unfreeze: what to unfreeze in phase 2, counted on the base's
            top-level layers (`base.layers`): an int `n` (the top `n` layers,
            weightless ones included, as in Keras's guides), a float in (0, 1]
            (that fraction, rounded up, of the layers with weights other than
            BatchNormalization, from the top, with the layers above them), the
            name of a layer (it and every layer above it), or `"all"`.
            Defaults to `"all"`.
        learning_rate: float or None, the peak learning rate of phase 1;
            `None` keeps the recipe's (for a recipe with `learning_rate="find"`,
            the LR range finder runs at the start of phase 1; for a model
            compiled without a recipe, a fresh copy of its optimizer).
            Defaults to `None`.
        fine_tune_learning_rate: float or None, the peak learning rate of
            phase 2; it must be lower than that of phase 1. `None` takes a
            hundredth of phase 1's (1e-4 for a model built with the defaults):
            on real ImageNet MobileNetV2 weights (`benchmarks/bench_fine_tune.py`)
            a tenth undid most of what the head had learned within two epochs,
            a hundredth kept it and improved on it. Defaults to `None`.
        discriminative_factor: float in (0, 1) or None, the ratio between
            the learning rates of consecutive groups in phase 2; `None` trains
            all at one rate. Defaults to `None`.
        discriminative_groups: int >= 1, the number of groups of the unfrozen
            base layers. Defaults to `3`.
        batch_size: int or None, for array data (Keras's default 32 when
            None). Defaults to `None`.
        steps_per_epoch: int or None, for datasets of unknown length.
            Defaults to `None`.
        callbacks: list of `keras.callbacks.Callback` or None, used in both
            phases. A `BackupAndRestore` is refused: give the recipe a
            `backup_dir`, which gives each phase its own. Defaults to `None`.
        recipe: a `keras_recipes.Recipe` or None, the recipe both phases train
            with (optimizer, schedule, clipping, early stopping, backup folder);
            `None` takes the model's (`model.recipe`), or, for a model compiled
            without one, the 1cycle on an optimizer of the compiled one's kind.
            A recipe's optimizer instance is replaced by a fresh optimizer of
            its kind on the 1cycle. The model must have been built in the
            recipe's `distribution`, if any. Defaults to `None`.
        verbose: as `fit`'s. Defaults to `"auto"`.
        **deprecated: `optimizer`, `one_cycle`, `clipnorm`, `backup_dir` and
            `distribution`, the arguments of the previous release that the
            recipe now holds; each changes the recipe as its option would (with
            a `DeprecationWarning`).

    Returns:
        A `keras.callbacks.History` covering both phases: `history.history`
        has one entry per epoch for each metric, and `history.history["phase"]`
        says which phase (1 or 2) each epoch belongs to; `history.epoch`
        counts on across the phases. When phase 1 stops on a NaN loss, phase
        2 does not run. With validation data and a phase 2,
        `history.params["best_weights"]` is a dict: `"monitor"`
        (`"val_loss"`), `"phase"` (1 when the head's weights were kept, else
        2), `"phase_1_epoch"` (the epoch of phase 1, from 0, whose weights phase
        2 started from: the one early stopping restored, else its last; None
        without a phase 1), `"phase_2_epoch"` (the best epoch of phase 2, from
        0, or None),
        `"value"` (its `val_loss`), `"phase_1_value"` (the head's) and
        `"restored"` (whether the weights are not those of the last epoch).

    Raises:
        ValueError: for a model with no identifiable base, a phase with no
            trainable weights, a phase-2 learning rate that is not lower, an
            unknown layer name, a distribution other than the model's, a
            backup folder holding another run, or out-of-range values.
        TypeError: for arguments of the wrong type.

    Example:

    >>> import numpy as np, keras_recipes
    >>> model = keras_recipes.build_transfer_model(
    ...     "MobileNetV2", num_classes=3, input_shape=(32, 32, 3), weights=None,
    ...     base_kwargs={"alpha": 0.35}, seed=0)
    >>> x = np.random.randint(0, 256, (64, 32, 32, 3)).astype("float32")
    >>> y = np.random.randint(0, 3, 64)
    >>> history = keras_recipes.fine_tune(model, (x, y), head_epochs=1, epochs=1,
    ...                                   unfreeze=10, verbose=0)
    >>> history.history["phase"]
    [1, 2]
    """
    base = check_model(model)
    unknown = sorted(set(deprecated) - set(DEPRECATED))
    if unknown:
        raise TypeError(f"fine_tune() got an unexpected keyword argument {unknown[0]!r}")
    selected = check_fine_tune_arguments(
        head_epochs=head_epochs, epochs=epochs, unfreeze=unfreeze, learning_rate=learning_rate,
        fine_tune_learning_rate=fine_tune_learning_rate,
        discriminative_factor=discriminative_factor,
        discriminative_groups=discriminative_groups, batch_size=batch_size,
        steps_per_epoch=steps_per_epoch, base=base)
    # A model compiled without a recipe keeps its own optimizer for phase 1 (a fresh copy).
    own_optimizer = recipe is None and getattr(model, "recipe", None) is None
    recipe = phases_recipe(model, recipe, deprecated)
    fit_data = fit_data_arguments(train_data, batch_size)
    callbacks = check_callbacks(callbacks)
    scope = distribution_scope(model, deprecated.get("distribution", recipe.distribution))
    backup = None if recipe.backup_dir is None else PhaseBackup(recipe.backup_dir, {
        "model": model.name, "head_epochs": head_epochs, "epochs": epochs, "unfreeze": unfreeze})
    if backup is not None:
        backup.claim()
    run = PhaseRun(fit_data, validation_data, steps_per_epoch, callbacks, verbose, backup)
    resumed = None if backup is None else backup.phase_one_done()  # phase 1 done before?

    def phase_recipe(phase, rate):
        folder = None if backup is None else backup.phase_folder(phase)
        return recipe.replace(learning_rate=rate, backup_dir=folder)

    head_rate = learning_rate
    if head_rate is None:
        head_rate = (opt.peak_learning_rate(model.optimizer) if own_optimizer
                     else recipe.learning_rate)
    finds = head_rate == "find"
    tune_rate = fine_tune_learning_rate
    if not (finds and head_epochs):
        tune_rate = opt.fine_tune_rate(fine_tune_learning_rate, None if finds else head_rate,
                                       epochs)
    check_trainable(model, base, selected, head_epochs=head_epochs, epochs=epochs,
                    unfreeze=unfreeze)

    histories, guard = [], None
    phase_one_epoch = None  # the epoch of phase 1 whose weights phase 2 starts from
    with scope():  # the new optimizers, the recompiles and the fits
        if resumed is not None:  # phase 1 finished before the interruption
            if resumed["phase_1"] is not None:
                histories.append((1, history_from_state(model, resumed["phase_1"])))
            tune_rate = resumed["fine_tune_learning_rate"]
            phase_one_epoch = resumed.get("phase_1_kept_epoch")
        elif head_epochs:
            freeze(base)
            head = phase_recipe(1, head_rate or recipe.learning_rate)
            if own_optimizer and learning_rate is None:
                head, optimizer = head.replace(schedule="constant"), opt.fresh_copy(
                    model.optimizer)
            else:
                optimizer = head.make_optimizer()
            history = fit_phase(model, head, optimizer, phase=1, epochs=head_epochs, run=run)
            histories.append((1, history))
            phase_one_epoch = kept_epoch(model, history, callbacks)
            if stopped_on_nan(history):  # no phase 2
                return _finish(model, histories, backup)
            if finds:  # the head's rate, found at the start of phase 1
                tune_rate = opt.fine_tune_rate(fine_tune_learning_rate,
                                               model.recipe.learning_rate, epochs)
        if epochs:
            unfreeze_top(base, selected)
            tune = phase_recipe(2, tune_rate)
            optimizer = opt.tune_optimizer(model, base, tune, discriminative_factor,
                                           discriminative_groups)
            if validation_data is not None:  # ends on the best weights of both phases
                guard = KeepBest(validation_data, batch_size, phase_one_epoch)
            phase_one = histories[0][1] if histories else None

            def start_phase_two():
                if backup is not None:
                    backup.start_phase_two(model, resumed, tune_rate, phase_one,
                                           phase_one_epoch)
                if guard is not None:
                    guard.start(model)

            history = fit_phase(model, tune, optimizer, phase=2, epochs=epochs, run=run,
                                on_compiled=start_phase_two, guard=guard)
            histories.append((2, history))
            if hasattr(model, "recipe"):  # ready to train further, without the phase's folder
                model.recipe = tune.replace(backup_dir=recipe.backup_dir)
    return _finish(model, histories, backup, guard, verbose)


def _finish(model, histories, backup, guard=None, verbose=0):
    if backup is not None:
        backup.finish()
    return combined_history(model, histories, best=None if guard is None else guard.outcome,
                            verbose=verbose)
