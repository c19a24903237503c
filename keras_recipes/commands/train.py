"""`keras-recipes train`: trains a recipe, keeps its record, writes its report."""

from __future__ import annotations

import math
import sys
import time

from keras_recipes import _backend_choice as _backend
from keras_recipes import _processes
from keras_recipes.commands._run_folder import RunFolder, default_name
from keras_recipes.commands._setup import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    build,
    fit_data,
    keep_paths_inside,
    names_a_key,
    run_config,
    test_data,
)
from keras_recipes.commands.summary import _floats, print_summary, training_metrics

__all__ = ["draw_uncertainty", "train"]


def train(args):
    """`keras-recipes train`: builds, trains, evaluates and reports a recipe run.

    With Keras's `KERAS_DISTRIBUTION_*` variables set (one command per process, JAX),
    the processes train one run data-parallel: the first writes the run folder and the
    backup, the others train beside it and read the backup when resuming.
    """
    import keras

    from keras_recipes.config import ConfigError
    from keras_recipes.models.registry import get_recipe_spec

    config = run_config(args)
    spec = get_recipe_spec(config.recipe)
    if config.report["tensorboard"]:
        _check_tensorboard(config)  # before the data and the model, which take long
    if config.report["lr_find"]:
        config.model["learning_rate"] = "find"
    distribution = _several_processes(args, config)
    folder = RunFolder(args.output or default_name(config.recipe), chosen=bool(args.output))
    writer = _processes.is_writer()
    output = folder.claim() if writer else folder.check()
    try:
        keep_paths_inside(config, output)
        keras.utils.set_random_seed(config.seed)
        data, model = build(config, distribution)
        image_size = config.dataset.get("image_size")
        if data.image_size is not None:  # a folder's or tfds images: the size they were given
            config.dataset["image_size"] = list(data.image_size)
        elif image_size is not None and list(data.input_shape[:2]) != list(image_size):
            # Images held in memory are not resized: record the size the model was built at.
            config.dataset["image_size"] = list(data.input_shape[:2])
        if distribution is not None and data.streamed:
            raise ConfigError(
                f"dataset.name: {config.dataset.get('name')!r} is streamed (a folder of images "
                "or a TensorFlow Datasets name), and a run on several processes shares out "
                "arrays held in memory only: train it in one process, or save it as a .npz")
        if config.report["mc_dropout_samples"]:
            _mc_predictor(model, config)  # a model without dropout is refused before training
        folder.resume_check(config.to_dict(), config.model.get("backup_dir"))
    except BaseException:
        if writer:
            folder.abandon()
        raise
    if writer:
        folder.write_settings(config.to_dict())
    _processes.barrier("keras_recipes.train.start")
    try:
        return _train_and_report(folder, config, spec, data, model)
    finally:
        if writer:
            folder.release()


def _several_processes(args, config):
    """The distribution of a run on several processes (`KERAS_DISTRIBUTION_*`), or None;
    what such a run cannot do is refused before anything starts."""
    from keras_recipes.config import ConfigError

    try:
        distribution = _processes.join_processes()
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if distribution is None:
        return None
    for refused, key in ((not args.output, "--output"),
                         (config.report["mc_dropout_samples"], "report.mc_dropout_samples"),
                         (config.model.get("learning_rate") == "find",
                          "model.learning_rate=find (report.lr_find)")):
        if refused:
            raise ConfigError(
                f"{key}: a run on {_processes.count()} processes "
                + ("needs --output, so that every process writes to the same run folder"
                   if key == "--output" else
                   "cannot use it (Keras gathers no predictions across processes); run it "
                   "in one process"))
    return distribution


def _train_and_report(folder, config, spec, data, model):
    """Trains a built recipe into its run folder; the first process (the only one, mostly)
    writes the record and the report, the others train beside it."""
    from keras_recipes import report
    from keras_recipes.config import ConfigError, explain

    output = folder.path
    writer, processes = _processes.is_writer(), _processes.count()
    several = (f" ({processes} processes, {len(_devices())} devices; this is process "
               f"{_processes.index()})" if processes > 1 else "")
    print(f"Training {config.recipe} on {data.name}: {len(data.y_train)} train, "
          f"{len(data.y_val)} validation, {len(data.y_test)} test samples"
          f"{' (streamed)' if data.streamed else ''} -> {output}{several}")
    print(_backend.describe(_keras_backend(), config.backend))

    from keras_recipes.run_record import run_recorder

    recorder = run_recorder(output, spec.phases(config.fit) if spec.phases else None) \
        if writer else None
    callbacks = [recorder] if writer else []
    if config.report["tensorboard"] and writer:
        from keras_recipes.callbacks import EpochTensorBoard

        # Epoch-level scalars only: a per-batch callback would make the model run one
        # batch per compiled call.
        callbacks.append(EpochTensorBoard(output / report.TENSORBOARD_FOLDER))
    status, started = "completed", time.perf_counter()
    best = None  # fine_tune's guard: which weights of its two phases it kept
    try:
        trained = spec.train(model, *fit_data(data), callbacks=callbacks,
                             verbose=(1 if sys.stdout.isatty() else 2) if writer else 0,
                             **config.fit)
        best = (getattr(trained, "params", None) or {}).get("best_weights")
    except KeyboardInterrupt:
        status = "interrupted"
        print("\nInterrupted: saving what finished.", file=sys.stderr)
    except Exception as error:  # a failure of training itself, not of the arguments
        if (isinstance(error, (ValueError, TypeError)) and not (recorder and recorder.started)
                and names_a_key(error, config.fit)):
            # Checked at the entry of the training function against the model
            # (a layer name to unfreeze, a learning rate that is not lower, ...).
            if writer:
                folder.abandon()
            raise ConfigError(explain(error, config, "fit")) from None
        print(f"keras-recipes: training failed: {type(error).__name__}: {error}",
              file=sys.stderr)
        return EXIT_FAILURE
    seconds = time.perf_counter() - started
    metrics = {"status": status}
    if status == "completed":  # on several processes, each evaluates its share
        test = model.evaluate(*test_data(data), verbose=0, return_dict=True)
        metrics.update({f"test_{key}": float(value) for key, value in test.items()})
    if not writer:
        _processes.join_save(model, ".keras")  # the first saves model.keras
        _processes.barrier("keras_recipes.train.end")  # while the first writes the report
        return EXIT_OK if status == "completed" else EXIT_INTERRUPTED
    history = recorder.history()  # the whole run's, the epochs before a resume included
    metrics.update(training_metrics(history, seconds, recorder.kept_weights(best),
                                     recorder.resumed_at))
    if processes > 1:
        metrics.update(processes=processes, devices=len(_devices()))
    if status == "completed" and not all(map(math.isfinite, _floats(metrics))):
        metrics["status"] = status = "diverged"
    extra_figures = []
    if status == "completed" and config.report["mc_dropout_samples"]:
        extra_figures.append(_mc_dropout_report(model, data, config, metrics))
    finder = getattr(model, "learning_rate_finder_result", None)
    if finder is not None:
        metrics["found_learning_rate"] = float(finder.suggestion)
        extra_figures.append(("lr_finder.png", "Learning-rate range test",
                              lambda ax: finder.plot(ax=ax)))
    report.write_run_report(output, model=model, history=history, metrics=metrics,
                            settings=config.to_dict(), extra_figures=extra_figures,
                            optimizers=recorder.optimizers or None)
    _processes.barrier("keras_recipes.train.end")
    print_summary(metrics, output)
    if status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if status == "completed" else EXIT_FAILURE


def _keras_backend():
    import keras

    return keras.backend.backend()


def _devices():
    """The devices of every process (`keras.distribution.list_devices`)."""
    import keras

    return keras.distribution.list_devices()


def _check_tensorboard(config):
    """Refuses `report.tensorboard: true` where TensorFlow, which writes the event files,
    is not installed."""
    import importlib.util

    from keras_recipes.config import ConfigError

    if importlib.util.find_spec("tensorflow") is None:
        raise ConfigError(
            f"{config.source}: report.tensorboard: TensorBoard event files are written with "
            "TensorFlow's tf.summary, and TensorFlow is not installed: pip install tensorflow "
            "(any Keras backend can train), or set report.tensorboard to false")


def _mc_dropout_report(model, data, config, metrics):
    """MC-Dropout predictions on the test split: metrics and the uncertainty histogram."""
    import numpy as np

    from keras_recipes.uncertainty import expected_calibration_error

    x_test, _ = test_data(data)  # a stream's order is that of data.y_test
    result = _mc_predictor(model, config).predict(x_test)
    plain = model.predict(x_test, verbose=0)
    metrics["mc_test_accuracy"] = float(np.mean(result.predict_classes() == data.y_test))
    metrics["test_ece"] = float(expected_calibration_error(data.y_test, plain))
    metrics["mc_test_ece"] = float(expected_calibration_error(data.y_test, result.mean))
    correct = result.predict_classes() == data.y_test
    title = f"MC Dropout uncertainty ({config.report['mc_dropout_samples']} samples)"
    return ("uncertainty.png", title,
            lambda ax: draw_uncertainty(ax, result.entropy, correct, title))


def draw_uncertainty(ax, entropy, correct, title):
    """Histograms of the predictive entropy of right and wrong predictions, each as shares.

    Each group is normalised to its own size, so that a handful of wrong predictions is as
    visible as hundreds of right ones.
    """
    import numpy as np

    bins = np.linspace(0, max(float(entropy.max()), 1e-6), 30)
    for mask, label, color in ((correct, "correct", "tab:blue"), (~correct, "wrong", "tab:red")):
        if mask.any():
            ax.hist(entropy[mask], bins=bins, weights=np.full(mask.sum(), 1 / mask.sum()),
                    alpha=0.6, color=color, edgecolor=color, label=f"{label} ({mask.sum()})")
    ax.set_xlabel("predictive entropy (nats): higher is less sure")
    ax.set_ylabel("share of the group's test samples")
    ax.set_title(title)
    ax.legend(title="predictions")


def _mc_predictor(model, config):
    from keras_recipes._validation import argument_of
    from keras_recipes.config import ConfigError
    from keras_recipes.uncertainty import MCDropoutPredictor

    try:
        return MCDropoutPredictor(model, num_samples=config.report["mc_dropout_samples"],
                                  seed=config.seed)
    except (ValueError, TypeError) as error:
        if argument_of(error) == "model":  # no dropout layer to sample: say which setting
            fix = ("set model.dropout_rate above 0 (e.g. --set model.dropout_rate=0.2), or "
                   if "dropout_rate" in config.model else "this recipe has no dropout setting: ")
            raise ConfigError(
                f"{config.source}: report.mc_dropout_samples: the {config.recipe} model has no "
                f"dropout layer to sample (model.dropout_rate is "
                f"{config.model.get('dropout_rate', 'not a setting')}); {fix}"
                "set report.mc_dropout_samples to 0") from None
        raise ConfigError(f"{config.source}: report.mc_dropout_samples: {error}") from None
