"""`fine_tune`: trains a transfer model in two phases, the head, then the top of the base.

Read as a composition: check the arguments once, then phase 1 (base frozen, head
trained) and phase 2 (top of the base unfrozen, a lower learning rate), each one
`phases.fit_phase`; a backup folder lets an interrupted run resume in its phase.
"""

from __future__ import annotations

from keras_recipes.models.transfer import optimizers as opt
from keras_recipes.models.transfer.arguments import (
    check_callbacks,
    check_fine_tune_arguments,
    check_model,
    fit_data_arguments,
)
from keras_recipes.models.transfer.distribution import distribution_scope
from keras_recipes.models.transfer.keep_best import KeepBest
from keras_recipes.models.transfer.phases import (
    PhaseRun,
    combined_history,
    fit_phase,
    kept_epoch,
    stopped_on_nan,
)
from keras_recipes.models.transfer.resume import history_from_state, phase_backup
from keras_recipes.models.transfer.selection import check_trainable, freeze, unfreeze_top

__all__ = ["fine_tune"]


def fine_tune(
    model,
    train_data,
    validation_data=None,
    *,
    head_epochs=5,
    epochs=10,
    unfreeze="all",
    learning_rate=None,
    fine_tune_learning_rate=None,
    optimizer=None,
    one_cycle="auto",
    clipnorm=None,
    discriminative_factor=None,
    discriminative_groups=3,
    batch_size=None,
    steps_per_epoch=None,
    callbacks=None,
    backup_dir=None,
    distribution=None,
    verbose="auto",
):
    """Trains a transfer model in two phases: the head, then the top of the base.

    **Phase 1** freezes the base and trains the rest (the new head) for
    `head_epochs`: a randomly initialised head sends large gradients back,
    which would wreck the pretrained features if the base were trainable.
    **Phase 2** unfreezes the top `unfreeze` layers of the base, keeps every
    BatchNormalization layer frozen (a frozen BatchNormalization layer runs in
    inference mode in Keras 3, so its moving statistics never change),
    recompiles -- Keras only sees new `trainable` flags after `compile` -- at
    the lower `fine_tune_learning_rate` (on a new 1cycle by default) and trains
    for `epochs` more. Each phase is one `fit` call, with the model's recipe
    callbacks (1cycle span, early stopping when there is validation data,
    stop on NaN) and your `callbacks`; while it trains, `model.fine_tune_phase`
    is its number (1 or 2), for callbacks that tell the phases apart.

    With `discriminative_factor`, phase 2 uses discriminative learning rates
    (as in ULMFiT / fastai): the head trains at `fine_tune_learning_rate`, and
    the unfrozen base layers, split into `discriminative_groups` consecutive
    groups, at `fine_tune_learning_rate * discriminative_factor**k` for the
    `k`-th group from the top, through Keras's `keras.optimizers.MultiOptimizer`
    (present in Keras 3.15; with a Keras that lacks it, `discriminative_factor`
    raises a `ValueError` saying so).

    With a `backup_dir` (given here, or the model's own from
    `build_transfer_model(backup_dir=...)`), a run that is killed and started
    again with the same call resumes where it was, in the phase it was in:

    - killed in phase 1: phase 1 goes on from its last finished epoch (weights,
      optimizer state and 1cycle position restored by
      `AtomicBackupAndRestore`), then phase 2 runs;
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
    order is kept). As with Keras's `BackupAndRestore`, early stopping starts
    counting again after a resume. The folder is removed when the run finishes; it must not
    hold the backup of a run with other epochs, `unfreeze` or model.

    **The best weights are kept.** With `validation_data`, the model as phase
    2 starts (the head trained on the frozen base) is scored once on it, and
    every phase-2 epoch by its `val_loss`; when phase 2 ends, the model takes
    the weights of the best of them -- the head's own when no phase-2 epoch
    beat them, so that fine-tuning never returns a model worse on validation
    than the head alone. `history.params["best_weights"]` says what was kept,
    and a line is printed when `verbose` and the weights were restored. (A
    resumed run keeps this promise too: the head's score and the best epoch
    are in `backup_dir`.) Without validation data nothing can be compared:
    the model is as phase 2's last epoch leaves it.

    The model stays compiled with the phase-2 optimizer, the top of the base
    trainable, ready to save or to train further.

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
            `None` keeps the model's compiled optimizer settings (a fresh copy
            of its optimizer; for a model built with `learning_rate="find"`,
            the LR range finder runs at the start of phase 1).
            Defaults to `None`.
        fine_tune_learning_rate: float or None, the peak learning rate of
            phase 2; it must be lower than that of phase 1. `None` takes a
            hundredth of phase 1's (1e-4 for a model built with the defaults):
            on real ImageNet MobileNetV2 weights (`benchmarks/bench_fine_tune.py`)
            a tenth undid most of what the head had learned within two epochs,
            a hundredth kept it and improved on it. Defaults to `None`.
        optimizer: str or None, `"adam"`, `"nadam"`, `"adamw"` or `"sgd"` for
            the new optimizers; `None` takes the kind of the compiled one
            (Adam when it is not one of those). Defaults to `None`.
        one_cycle: bool or `"auto"`, whether the new optimizers follow a
            1cycle spread over their phase. Defaults to `"auto"` (yes, except
            for a model built with `schedule="plateau"`, whose phases run at a
            constant rate that `ReduceLROnPlateau` lowers).
        clipnorm: float or None, gradient clipping of the new optimizers.
            Defaults to `None`.
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
            phases. A `BackupAndRestore` is refused: pass `backup_dir`, which
            gives each phase its own. Defaults to `None`.
        backup_dir: str or None, the folder that lets an interrupted run
            resume (see above); `None` takes the model's `backup_dir` (a
            `RecipeModel`'s), if any. Defaults to `None`.
        distribution: None, a `tf.distribute.Strategy` (TensorFlow) or a
            `keras.distribution` distribution (JAX): the one the model was
            built in (`build_transfer_model(..., distribution=...)`). The new
            optimizers are created, the model recompiled and both phases
            trained in its scope. `None` takes the model's own distribution,
            if it was built in one. Defaults to `None`.
        verbose: as `fit`'s. Defaults to `"auto"`.

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
            `backup_dir` holding another run, or out-of-range values.
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
    if one_cycle == "auto" and getattr(model, "reduce_lr_on_plateau", False):
        one_cycle = False  # schedule="plateau": ReduceLROnPlateau needs a constant rate
    settings = check_fine_tune_arguments(
        head_epochs=head_epochs, epochs=epochs, unfreeze=unfreeze, learning_rate=learning_rate,
        fine_tune_learning_rate=fine_tune_learning_rate, optimizer=optimizer,
        one_cycle=one_cycle, clipnorm=clipnorm, discriminative_factor=discriminative_factor,
        discriminative_groups=discriminative_groups, batch_size=batch_size,
        steps_per_epoch=steps_per_epoch, base=base)
    fit_data = fit_data_arguments(train_data, batch_size)
    callbacks = check_callbacks(callbacks)
    scope = distribution_scope(model, distribution)
    backup = phase_backup(model, backup_dir, {
        "model": model.name, "head_epochs": head_epochs, "epochs": epochs, "unfreeze": unfreeze})
    run = PhaseRun(fit_data, validation_data, steps_per_epoch, callbacks, verbose, backup)
    resumed = None if backup is None else backup.phase_one_done()  # phase 1 done before?
    kind = settings.kind or opt.optimizer_kind(model.optimizer) or "adam"

    # A model built with learning_rate="find" learns its head's rate in phase 1;
    # phase 2's rate is known (and checked) once it is.
    finder = learning_rate is None and bool(getattr(model, "auto_learning_rate", False))
    tune_rate = fine_tune_learning_rate
    if not (finder and head_epochs):
        tune_rate = opt.phase_two_rate(model, learning_rate, fine_tune_learning_rate, epochs,
                                       head_rate_known=not finder)
    check_trainable(model, base, settings.selected, head_epochs=head_epochs, epochs=epochs,
                    unfreeze=unfreeze)

    histories = []
    phase_one_epoch = None  # the epoch of phase 1 whose weights phase 2 starts from
    with scope():  # the new optimizers, the recompiles and the fits
        if resumed is not None:  # phase 1 finished before the interruption
            if resumed["phase_1"] is not None:
                histories.append((1, history_from_state(model, resumed["phase_1"])))
            tune_rate = resumed["fine_tune_learning_rate"]
            phase_one_epoch = resumed.get("phase_1_kept_epoch")
        elif head_epochs:
            freeze(base)
            head_optimizer = opt.head_optimizer(model, kind, learning_rate, settings.one_cycle,
                                                clipnorm)
            history = fit_phase(model, *head_optimizer, phase=1, epochs=head_epochs, run=run,
                                find_learning_rate=learning_rate is None)
            histories.append((1, history))
            phase_one_epoch = kept_epoch(model, history, callbacks)
            if stopped_on_nan(history):  # no phase 2
                if backup is not None:
                    backup.finish()
                return combined_history(model, histories)
            if finder:
                tune_rate = opt.phase_two_rate(model, None, fine_tune_learning_rate, epochs)
        guard = None
        if epochs:
            unfreeze_top(base, settings.selected)
            tune_optimizer = opt.tune_optimizer(model, base, kind, tune_rate, settings.one_cycle,
                                                clipnorm, discriminative_factor,
                                                discriminative_groups)
            phase_one = histories[0][1] if histories else None
            if validation_data is not None:  # ends on the best weights of both phases
                guard = KeepBest(validation_data, batch_size,
                                 None if backup is None else backup.folder, phase_one_epoch)

            def start_phase_two():
                if backup is not None:
                    backup.start_phase_two(model, resumed, tune_rate, phase_one,
                                           phase_one_epoch)
                if guard is not None:
                    guard.start(model)

            history = fit_phase(model, *tune_optimizer, phase=2, epochs=epochs,
                                run=run, on_compiled=start_phase_two, guard=guard)
            histories.append((2, history))
        if guard is not None:
            guard.finish()
        if backup is not None:
            backup.finish()
    return combined_history(model, histories, best=None if guard is None else guard.outcome,
                            verbose=verbose)
