"""Transfer learning: a pretrained base with a new head, then two-phase fine-tuning."""

from __future__ import annotations

import math

import keras

from keras_recipes import _validation as v
from keras_recipes.callbacks.one_cycle_span import OneCycleSpan
from keras_recipes.models import _blocks as blocks
from keras_recipes.models import _fine_tune as ft
from keras_recipes.models import _transfer_base as tb
from keras_recipes.models._preprocessing import ApplicationPreprocessing
from keras_recipes.models._recipe_model import RecipeModel

__all__ = ["ApplicationPreprocessing", "build_transfer_model", "fine_tune",
           "transfer_learning_recipe"]

POOLINGS = ("avg", "max")


def build_transfer_model(
    base,
    num_classes=None,
    input_shape=None,
    weights="imagenet",
    *,
    task="auto",
    num_outputs=1,
    base_kwargs=None,
    feature_layer=None,
    preprocessing="auto",
    pooling="avg",
    dropout_rate=0.2,
    num_hidden_layers=0,
    units=128,
    activation="relu",
    optimizer="adam",
    learning_rate=1e-2,
    one_cycle="auto",
    total_steps=None,
    clipnorm=None,
    early_stopping_patience=5,
    backup_dir=None,
    distribution=None,
    steps_per_execution="auto",
    jit_compile="auto",
    seed=None,
    name="transfer_model",
):
    """Builds and compiles a pretrained base with a new head, the base frozen.

    The graph is `inputs -> preprocessing -> base(x, training=False) ->
    pooling -> dropout -> [Dense -> activation -> dropout] * num_hidden_layers
    -> output`:

    - the **base** is a `keras.applications` model built with
      `include_top=False`, or a copy of a model of yours. It is frozen
      (`trainable=False`) and called with `training=False`. Its
      BatchNormalization layers stay in inference mode, using the statistics
      of the pretrained data (which a few hundred new images must not
      overwrite), also once `fine_tune` unfreezes the rest: it keeps them
      frozen, and a frozen BatchNormalization layer always runs in inference
      mode in Keras 3. (Keras 3.15 passes `fit`'s `training=True` over the
      `training=False` given when the graph was built, a bug fixed upstream in
      keras-team/keras#23364; BatchNormalization is unaffected, for the reason
      above, but other layers of the base that act only in training -- Dropout,
      EfficientNet's stochastic depth -- are active during `fit`, as they were
      during pretraining.);
    - the application's own **`preprocess_input`** is in the graph (as an
      `ApplicationPreprocessing` layer, which reloads in Keras's safe mode
      where a `Lambda` would not), so the model takes raw images with pixel
      values in [0, 255]. Images must already have the model's input size;
    - the **head** is global average (or max) pooling, dropout, optional
      hidden Dense layers (initializer matched to the activation), and an
      output layer and loss chosen from the task.

    The model is compiled with Adam on a 1cycle learning rate (and `beta_1`)
    that `fit` spreads over its own steps, early stopping on the validation
    loss (with the best weights restored) and a stop on NaN, as the other
    recipes. Train it with `keras_recipes.fine_tune`, which trains the head
    and then fine-tunes the top of the base at a lower learning rate.

    A model of yours as `base` (for example one trained on a related task with
    more data) must be functional or `Sequential`, with one input and one
    output. It is copied, so training the transfer model leaves yours
    unchanged. Its features are taken as follows, with `feature_layer=None`:

    - a model that ends in a classifier top -- Dense layers on feature
      vectors, with the activation, dropout and normalization layers between
      them -- loses that top, as `include_top=False` does for an application;
      the features are what the top received (say the output of its
      `Flatten` or global pooling layer). The upper Dense layers hold the
      features most specific to the old task: on the MNIST benchmark (digits
      0-4 -> 5-9, 100 images) a head on the Flatten output reached 90% test
      accuracy against 67-72% on the last hidden Dense layer;
    - a model made only of Dense layers loses its last Dense layer (the
      output), as in the chapter's "reuse all layers but the output layer";
    - any other model is used whole: a model whose output is a feature map
      or a feature vector is the base as it is.

    A feature map is pooled; a feature vector goes to the head directly. Pass
    `feature_layer` (a layer name or index) to cut elsewhere.

    Args:
        base: str or `keras.Model`. The name of a `keras.applications` model
            (`"MobileNetV2"`, `"ResNet50"`, `"EfficientNetB0"`, ...,
            case-insensitive), or a model of yours.
        num_classes: int >= 2, the number of classes; `None` for regression.
        input_shape: tuple of ints or None, the shape of one image, e.g.
            `(224, 224, 3)`. `None` takes, for an application, the size its
            ImageNet weights were trained at (224 for most, 299 for
            Inception and Xception, ...) and, for a model of yours, its input
            shape. Defaults to `None`.
        weights: `"imagenet"`, `None` or the path of a weights file. For an
            application: `"imagenet"` downloads the pretrained weights (needs
            the internet once; Keras caches them in `~/.keras/models`), `None`
            initialises randomly, a path loads a file holding the weights of
            the application built with `include_top=False` (offline use). For a
            model of yours nothing is downloaded: `"imagenet"` and `None` keep
            its own weights, a path loads a file of its weights into the copy.
            Defaults to `"imagenet"`.
        task: str, `"auto"` (binary for 2 classes, else multi-class),
            `"multiclass"`, `"binary"` or `"regression"`. Defaults to `"auto"`.
        num_outputs: int, the number of regression targets. Defaults to `1`.
        base_kwargs: dict or None, more arguments of the application builder,
            e.g. `{"alpha": 0.35}` for MobileNetV2. Defaults to `None`.
        feature_layer: str, int or None, for a model of yours: the name or
            index (in `base.layers`) of the layer whose output is the
            features; `None` decides as described above. Defaults to `None`.
        preprocessing: `"auto"`, None, str or a `keras.layers.Layer`.
            `"auto"` puts the application's `preprocess_input` in front of the
            base (nothing for a model of yours); a `keras.applications`
            module or model name (`"resnet"`, `"ResNet50"`) selects another
            family's; a layer (e.g. `keras.layers.Rescaling(1 / 255)`, to
            match what your model was trained on) is used as given.
            Defaults to `"auto"`.
        pooling: str, `"avg"` or `"max"` global pooling of a feature map
            (not used for feature vectors). Defaults to `"avg"`.
        dropout_rate: float in [0, 1), dropout on the features and after each
            hidden layer. Defaults to `0.2`.
        num_hidden_layers: int >= 0, hidden Dense layers in the head.
            Defaults to `0`.
        units: int, units per hidden layer. Defaults to `128`.
        activation: str, the activation of the hidden layers (see
            `build_default_dnn`). Defaults to `"relu"`.
        optimizer: str (`"adam"`, `"nadam"`, `"adamw"`, `"sgd"`) or a
            `keras.optimizers.Optimizer` instance. Defaults to `"adam"`.
        learning_rate: float or `"find"`, the peak learning rate of the 1cycle
            for the head (constant without 1cycle); `"find"` runs the LR range
            finder on the training data of the first `fit` (phase 1 of
            `fine_tune`) and uses its suggestion. The head is a small model on
            fixed features and a few hundred images give few steps, so the
            default is higher than Keras's usual 1e-3 (on the MNIST transfer
            benchmark, 10 head epochs at 1e-3 left the head at 32% test
            accuracy, at 1e-2 at 74%). Defaults to `1e-2`.
        one_cycle: bool or `"auto"`, as in `build_default_dnn`.
            Defaults to `"auto"`.
        total_steps: int or None, as in `build_default_dnn`. Defaults to `None`.
        clipnorm: float or None, clip each gradient to this norm.
            Defaults to `None`.
        early_stopping_patience: int or None, epochs without improvement of
            `val_loss` before stopping (best weights restored); `None`
            disables it. Defaults to `5`.
        backup_dir: str or None, a folder where training backs up its state
            after each epoch, so that a killed run started again resumes
            where it was: `fit` runs `keras.callbacks.BackupAndRestore` on it,
            and `fine_tune` (which takes it from the model) resumes in the
            phase it was in. Defaults to `None`.
        distribution: None, a `tf.distribute.Strategy` (TensorFlow backend:
            `MirroredStrategy`, `MultiWorkerMirroredStrategy`, `TPUStrategy`)
            or a `keras.distribution` distribution (JAX backend:
            `DataParallel`, `ModelParallel`). The base, the head, the
            optimizer and its schedules are created in its scope, the 1cycle
            counts global steps, and `fine_tune` creates phase 2's optimizer
            in the same scope. Defaults to `None`.
        steps_per_execution: int >= 1 or `"auto"`, as in `build_default_dnn`
            (kept by `fine_tune`'s recompile). Defaults to `"auto"`.
        jit_compile: bool or `"auto"`, as in `build_default_dnn`. Defaults to
            `"auto"`.
        seed: int or None, seeds the head's initializers and dropout (the
            base of `weights=None` is seeded only by
            `keras.utils.set_random_seed`). Defaults to `None`.
        name: str, the model's name. Defaults to `"transfer_model"`.

    Returns:
        A compiled `keras_recipes.models.RecipeModel` whose one nested model
        is the frozen base.

    Raises:
        ValueError: for an unknown application (with the closest name), an
            input shape the base cannot take, a weights file that does not
            fit, and out-of-range values.
        TypeError: for arguments of the wrong type.
        ConnectionError: when `weights="imagenet"` cannot be downloaded.

    Example:

    >>> import numpy as np, keras_recipes
    >>> model = keras_recipes.build_transfer_model(
    ...     "MobileNetV2", num_classes=5, input_shape=(96, 96, 3), weights=None,
    ...     base_kwargs={"alpha": 0.35}, seed=0)
    >>> images = np.random.randint(0, 256, (8, 96, 96, 3)).astype("float32")
    >>> model.predict(images, verbose=0).shape
    (8, 5)
    """
    blocks.check_common(num_hidden_layers=num_hidden_layers, units=units,
                        dropout_rate=dropout_rate, seed=seed,
                        early_stopping_patience=early_stopping_patience, min_hidden_layers=0)
    task = blocks.resolve_task(task, num_classes, num_outputs)
    activation = v.check_choice("activation", activation, blocks.ACTIVATION_INITIALIZERS)
    pooling = v.check_choice("pooling", pooling, POOLINGS)
    weights = tb.check_weights(weights)
    blocks.check_optimizer(optimizer, learning_rate, one_cycle, total_steps, clipnorm)
    ft.check_backup_dir(backup_dir)
    # Checked before the base is built; the base's variables belong to the
    # distribution as much as the head's.
    scope = blocks.distribution_scope(distribution)
    blocks.check_execution(steps_per_execution, jit_compile, distribution)

    if isinstance(base, str):
        application = v.check_choice("base", base, tb.application_names())
        base_kwargs = tb.check_base_kwargs(application, base_kwargs)
        if feature_layer is not None:
            v.fail("feature_layer", feature_layer, "None for a keras.applications base",
                   hint="(it is built with include_top=False and used whole)")
        input_shape = (tb.default_input_shape(application) if input_shape is None
                       else v.check_shape("input_shape", input_shape))
        preprocess = tb.preprocessing_layer(preprocessing, application)
        with scope():
            base_model = tb.build_application(application, input_shape, weights, base_kwargs)
    elif isinstance(base, keras.Model):
        if base_kwargs:
            v.fail("base_kwargs", base_kwargs, "None when `base` is a model",
                   hint="(it configures keras.applications builders)")
        preprocess = tb.preprocessing_layer(preprocessing, None)
        with scope():  # the copy of your model is made in the distribution's scope
            base_model, input_shape = tb.user_base(base, input_shape, weights, feature_layer)
    else:
        v.fail("base", base, "a keras.applications model name (e.g. 'MobileNetV2') or a "
               "keras.Model", error=TypeError)

    base_model.trainable = False

    def graph():
        inputs = keras.Input(shape=input_shape, name="inputs")
        x = inputs if preprocess is None else preprocess(inputs)
        try:
            x = base_model(x, training=False)
        except ValueError as error:
            v.fail("input_shape", input_shape, f"a shape the base {base_model.name!r} accepts",
                   hint=f"(calling it failed: {error})")
        pool = tb.pooling_layer(pooling, len(x.shape))
        if pool is not None:
            x = pool(x)
        if dropout_rate:
            x = keras.layers.Dropout(dropout_rate, seed=blocks.layer_seed(seed, 1000),
                                     name="dropout")(x)
        initializer_name = blocks.ACTIVATION_INITIALIZERS[activation]
        for i in range(1, num_hidden_layers + 1):
            x = keras.layers.Dense(
                units,
                kernel_initializer=blocks.seeded_initializer(initializer_name,
                                                             blocks.layer_seed(seed, i)),
                name=f"hidden_{i}",
            )(x)
            x = blocks.activation_layer(activation, layer_name=f"{activation}_{i}")(x)
            if dropout_rate:
                x = keras.layers.Dropout(dropout_rate, seed=blocks.layer_seed(seed, 1000 + i),
                                         name=f"dropout_{i}")(x)
        return inputs, blocks.output_layer(task, num_classes, num_outputs, seed=seed)(x)

    loss, metrics = blocks.task_loss(task)
    return blocks.assemble(
        graph,
        lambda: blocks.build_optimizer(optimizer, learning_rate, one_cycle, total_steps,
                                       clipnorm),
        name=name, loss=loss, metrics=metrics,
        early_stopping_patience=early_stopping_patience, learning_rate=learning_rate,
        backup_dir=backup_dir, distribution=distribution,
        steps_per_execution=steps_per_execution, jit_compile=jit_compile,
    )


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
    stop on NaN) and your `callbacks`.

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
      optimizer state and 1cycle position restored by Keras's
      `BackupAndRestore`), then phase 2 runs;
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

    The model is left as phase 2 leaves it (top of the base trainable,
    compiled with the phase-2 optimizer), ready to save or to train further.

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
            tenth of phase 1's (1e-3 for a model built with the defaults).
            Defaults to `None`.
        optimizer: str or None, `"adam"`, `"nadam"`, `"adamw"` or `"sgd"` for
            the new optimizers; `None` takes the kind of the compiled one
            (Adam when it is not one of those). Defaults to `None`.
        one_cycle: bool or `"auto"`, whether the new optimizers follow a
            1cycle spread over their phase. Defaults to `"auto"` (yes).
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
        2 does not run.

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
    if not isinstance(model, keras.Model):
        v.fail("model", model, "a keras.Model built by `build_transfer_model`", error=TypeError)
    if not model.compiled or model.optimizer is None:
        v.fail("model", model.name, "a compiled model",
               hint="(compile it, or build it with `build_transfer_model`)")
    base = ft.find_base(model)
    v.check_int("head_epochs", head_epochs, min_value=0)
    v.check_int("epochs", epochs, min_value=0)
    if head_epochs == 0 and epochs == 0:
        v.fail("epochs", epochs, "positive when head_epochs=0", hint="(nothing to train)")
    selected = ft.select_layers(base, unfreeze)
    v.check_number("learning_rate", learning_rate, low=0, low_inclusive=False, allow_none=True)
    v.check_number("fine_tune_learning_rate", fine_tune_learning_rate, low=0,
                   low_inclusive=False, allow_none=True)
    if optimizer is None:
        kind = ft.optimizer_kind(model.optimizer) or "adam"
    else:
        if not isinstance(optimizer, str):
            v.fail("optimizer", optimizer,
                   "None or an optimizer name (" + ", ".join(repr(n) for n in blocks.OPTIMIZERS)
                   + ")", error=TypeError)
        kind = v.check_choice("optimizer", optimizer, blocks.OPTIMIZERS)
    if one_cycle != "auto":
        v.check_bool("one_cycle", one_cycle)
    one_cycle = one_cycle is True or one_cycle == "auto"
    v.check_number("clipnorm", clipnorm, low=0, low_inclusive=False, allow_none=True)
    v.check_number("discriminative_factor", discriminative_factor, low=0, high=1,
                   low_inclusive=False, high_inclusive=False, allow_none=True)
    v.check_int("discriminative_groups", discriminative_groups, min_value=1)
    if discriminative_factor is not None and ft._MultiOptimizer is None:
        v.fail("discriminative_factor", discriminative_factor,
               "None with this Keras", hint=f"(Keras {keras.__version__} has no "
               "keras.optimizers.MultiOptimizer; upgrade Keras to use it)")
    v.check_int("batch_size", batch_size, min_value=1, allow_none=True)
    v.check_int("steps_per_epoch", steps_per_epoch, min_value=1, allow_none=True)
    fit_data = _fit_data(train_data, batch_size)
    callbacks = _check_callbacks(callbacks)
    scope = ft.distribution_scope(model, distribution)
    backup_dir = ft.check_backup_dir(backup_dir)
    if backup_dir is None:
        backup_dir = getattr(model, "backup_dir", None)  # a RecipeModel's own
    backup = None if backup_dir is None else ft.PhaseBackup(backup_dir, {
        "model": model.name, "head_epochs": head_epochs, "epochs": epochs, "unfreeze": unfreeze})
    # Not None when phase 1 has finished in an interrupted run of this call.
    resumed = None if backup is None else backup.phase_one_done()

    # A model built with learning_rate="find" learns its head's rate in phase 1.
    finder = learning_rate is None and bool(getattr(model, "auto_learning_rate", False))
    if learning_rate is not None:
        head_rate = learning_rate
    else:
        head_rate = None if finder else ft.peak_learning_rate(model.optimizer)
    if not (finder and head_epochs):
        fine_tune_learning_rate = _fine_tune_rate(fine_tune_learning_rate, head_rate, epochs)

    # Checked before anything trains: both phases have weights to train.
    flags = ft.trainable_flags(model)
    try:
        ft.freeze(base)
        if head_epochs and not model.trainable_weights:
            v.fail("model", model.name, "a model with trainable weights outside its base for "
                   "phase 1 (the head)", hint=f"(every layer outside {base.name!r} is frozen "
                   "or has no weights)")
        if epochs:
            ft.unfreeze_top(base, selected)
            if not base.trainable_weights:
                names = [layer.name for layer in selected]
                shown = ", ".join(repr(n) for n in names[:5]) + (", ..." if len(names) > 5
                                                                 else "")
                v.fail("unfreeze", unfreeze, "a choice of base layers with weights to train in "
                       "phase 2", hint=f"(the chosen layers {shown} have none besides "
                       "BatchNormalization, which stays frozen)")
    except ValueError:
        ft.restore_flags(flags)
        raise

    phase_fit = dict(fit_data=fit_data, validation_data=validation_data,
                     steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=verbose,
                     backup=backup)
    histories = []
    with scope():  # the new optimizers, the recompiles and the fits
        if resumed is not None:  # phase 1 finished before the interruption
            if resumed["phase_1"] is not None:
                histories.append((1, ft.history_from_state(model, resumed["phase_1"])))
            fine_tune_learning_rate = resumed["fine_tune_learning_rate"]
        elif head_epochs:
            ft.freeze(base)
            if learning_rate is None:
                head_optimizer = ft.fresh_copy(model.optimizer)
                auto = bool(getattr(model, "auto_one_cycle", False))
            else:
                head_optimizer, auto = blocks.build_optimizer(kind, learning_rate, one_cycle,
                                                              None, clipnorm)
            if learning_rate is not None and isinstance(model, RecipeModel):
                model.auto_learning_rate = False
            _compile_phase(model, head_optimizer, auto)
            history = _fit_phase(model, auto, phase=1, epochs=head_epochs, **phase_fit)
            histories.append((1, history))
            losses = history.history.get("loss") or [0.0]
            if not math.isfinite(losses[-1]):  # stopped on NaN: no phase 2
                if backup is not None:
                    backup.finish()
                return ft.combined_history(model, histories)
            if finder:  # the rate the finder chose for the head is known now
                fine_tune_learning_rate = _fine_tune_rate(
                    fine_tune_learning_rate, ft.peak_learning_rate(model.optimizer), epochs)
        if epochs:
            ft.unfreeze_top(base, selected)
            if isinstance(model, RecipeModel):
                model.auto_learning_rate = False  # phase 2 runs at the rate chosen here
            if discriminative_factor is None:
                tune_optimizer, auto = blocks.build_optimizer(kind, fine_tune_learning_rate,
                                                              one_cycle, None, clipnorm)
            else:
                tune_optimizer, auto, _ = ft.discriminative_optimizer(
                    model, base, kind, fine_tune_learning_rate, one_cycle, clipnorm,
                    discriminative_factor, discriminative_groups)
            _compile_phase(model, tune_optimizer, auto)
            if resumed is not None:
                backup.load_phase_two_start(model)
            elif backup is not None:
                backup.save_phase_two_start(model, fine_tune_learning_rate,
                                            histories[0][1] if histories else None)
            history = _fit_phase(model, auto, phase=2, epochs=epochs, **phase_fit)
            histories.append((2, history))
        if backup is not None:
            backup.finish()
    return ft.combined_history(model, histories)


def _fine_tune_rate(fine_tune_learning_rate, head_rate, epochs):
    """Phase 2's peak learning rate: given and lower than the head's, or a tenth of it."""
    if fine_tune_learning_rate is None:
        if head_rate is None:
            v.fail("fine_tune_learning_rate", None,
                   "given when the head's learning rate is not known (not a number or a "
                   "1cycle)")
        return head_rate / 10
    if head_rate is not None and epochs and fine_tune_learning_rate >= head_rate:
        v.fail("fine_tune_learning_rate", fine_tune_learning_rate,
               f"lower than the head's learning rate ({head_rate:g})",
               hint="(a high rate on the unfrozen base wrecks its pretrained features; "
               "10 to 100 times lower is usual)")
    return fine_tune_learning_rate


def _compile_phase(model, optimizer, auto):
    ft.recompile(model, optimizer)
    if isinstance(model, RecipeModel):
        model.auto_one_cycle = auto


def _fit_phase(model, auto, *, phase, fit_data, validation_data, epochs, steps_per_epoch,
               callbacks, verbose, backup):
    callbacks = list(callbacks)
    logged = {}
    if backup is not None:  # first, so that the state is restored before the 1cycle span
        logged = backup.logged_epochs(phase)
        callbacks = backup.callbacks(phase) + callbacks
    if auto:
        callbacks.append(OneCycleSpan())
    # Keras's BackupAndRestore sets `_initial_epoch` and nothing resets it: the
    # next `fit` of the model would start at that epoch too (phase 2 after a
    # resumed phase 1 would skip epochs).
    model._initial_epoch = None
    try:
        history = model.fit(**fit_data, validation_data=validation_data, epochs=epochs,
                            steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                            verbose=verbose)
    finally:
        model._initial_epoch = None
    return ft.with_logged_epochs(history, logged)


def _fit_data(train_data, batch_size):
    """`fit`'s keyword arguments for `train_data`."""
    if isinstance(train_data, (tuple, list)):
        if len(train_data) not in (2, 3):
            v.fail("train_data", v.Described(f"<{type(train_data).__name__} of {len(train_data)} "
                                        "items>"),
                   "a tuple (x, y) or (x, y, sample_weight), or a dataset")
        data = dict(zip(("x", "y", "sample_weight"), train_data))
        data["batch_size"] = batch_size
        return data
    if train_data is None or isinstance(train_data, (str, bytes, int, float, dict)) or hasattr(
            train_data, "shape"):
        shown = (v.Described(f"<array of shape {tuple(train_data.shape)}>")
                 if hasattr(train_data, "shape") else train_data)
        v.fail("train_data", shown, "a tuple (x, y) of arrays or a dataset yielding (x, y) "
               "batches (tf.data.Dataset, keras.utils.PyDataset)",
               hint="(labels are needed: pass (x, y))", error=TypeError)
    if batch_size is not None:
        v.fail("batch_size", batch_size, "None when `train_data` is a dataset",
               hint="(a dataset is batched already)")
    # Keras warns that `shuffle=True` (its default) is ignored for a dataset.
    return {"x": train_data, "shuffle": False}


def _check_callbacks(callbacks):
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)) or not all(
            isinstance(c, keras.callbacks.Callback) for c in callbacks):
        v.fail("callbacks", callbacks, "a list of keras.callbacks.Callback or None",
               error=TypeError)
    if any(isinstance(c, keras.callbacks.BackupAndRestore) for c in callbacks):
        shown = v.Described("[" + ", ".join(type(c).__name__ for c in callbacks) + "]")
        v.fail("callbacks", shown, "a list without BackupAndRestore",
               hint="(one backup for both phases would restore phase 2's state into phase 1; "
               "pass `backup_dir=` instead, which gives each phase its own)")
    return list(callbacks)


def transfer_learning_recipe(input_shape, num_classes=None, *, base="MobileNetV2",
                             weights="imagenet", seed=None, **kwargs):
    """Transfer learning: a pretrained base, frozen, with a new head; trained with `fine_tune`.

    The registry's form of `build_transfer_model`, called as
    `factory(input_shape, num_classes, seed=..., **kwargs)` like the other
    recipes, with a default base (`"MobileNetV2"`). Its signature
    (`inspect.signature`, `help`) lists every keyword argument of
    `build_transfer_model`, so a config's `model` section may set any of them
    (and only them). Train the model it returns with `keras_recipes.fine_tune`:
    the head on the frozen base, then the top of the base at a lower learning
    rate (`keras-recipes train transfer_learning` does).

    Args:
        input_shape: tuple of ints, the shape of one image, e.g. `(160, 160, 3)`.
        num_classes: int >= 2, or None for regression. Defaults to `None`.
        base: str or `keras.Model`, as in `build_transfer_model`.
            Defaults to `"MobileNetV2"`.
        weights: as in `build_transfer_model`: `"imagenet"` (downloaded once),
            None, or the path of a weights file. Defaults to `"imagenet"`.
        seed: int or None, as in `build_transfer_model`. Defaults to `None`.
        **kwargs: every other keyword argument of `build_transfer_model`
            (`base_kwargs`, `dropout_rate`, `learning_rate`, ...).

    Returns:
        A compiled `keras_recipes.models.RecipeModel` whose base is frozen.

    Raises:
        ValueError: as `build_transfer_model`, and for an `input_shape` that is
            not an image's (e.g. `(64,)`) with a `keras.applications` base.
        TypeError: as `build_transfer_model`, and for a keyword argument it
            does not take.
        ConnectionError: when `weights="imagenet"` cannot be downloaded.

    Example:

    >>> from keras_recipes.models.transfer import transfer_learning_recipe
    >>> model = transfer_learning_recipe((32, 32, 3), 4, weights=None,
    ...                                  base_kwargs={"alpha": 0.35})
    >>> model.output_shape
    (None, 4)
    """
    if isinstance(base, str) and input_shape is not None:
        # The data decides the shape here: vectors (a .csv file, "digits") would reach
        # the application builder, which fails with an IndexError.
        application = v.check_choice("base", base, tb.application_names())
        shape = v.check_shape("input_shape", input_shape)
        if len(shape) != 3:
            v.fail("input_shape", shape, f"the shape of one image, e.g. (160, 160, 3), for the "
                   f"keras.applications base {application!r}",
                   hint="(transfer learning from a pretrained image model needs image data)")
    return build_transfer_model(base, num_classes, input_shape, weights, seed=seed, **kwargs)


def _transfer_learning_recipe_signature():
    """`build_transfer_model`'s signature in the registry's order, with a default base."""
    import inspect

    own = inspect.signature(transfer_learning_recipe).parameters
    parameters = [own["input_shape"], own["num_classes"]]
    for name, parameter in inspect.signature(build_transfer_model).parameters.items():
        if name in ("input_shape", "num_classes"):
            continue
        parameters.append(own[name] if name in own else
                          parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    return inspect.Signature(parameters)


# Read by `inspect.signature` (and so by configs and `help`): every keyword of
# build_transfer_model, present and future, without repeating them here.
transfer_learning_recipe.__signature__ = _transfer_learning_recipe_signature()
