"""The run report: everything a training run leaves in its output folder."""

from __future__ import annotations

import csv
import io
import json
import pathlib

from keras_recipes import _io, plots
from keras_recipes import _keras_internals as internals

__all__ = ["TENSORBOARD_FOLDER", "history_csv", "history_from_csv", "kept_weights_text",
           "write_run_report"]

#: The folder of a run's TensorBoard event files, when the run writes them
#: (`report.tensorboard: true`).
TENSORBOARD_FOLDER = "tensorboard"


def _figure():
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError('Run reports need matplotlib: pip install "keras-recipes[cli]"') \
            from error
    return Figure(figsize=(6, 4), layout="constrained")


def _save_figure(figure, path):
    with _io.atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100, format="png")


def history_csv(history):
    """The per-epoch history as CSV text, one row per epoch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    keys = list(history)
    writer.writerow(["epoch", *keys])
    for epoch in range(len(history[keys[0]]) if keys else 0):
        writer.writerow([epoch + 1, *(history[k][epoch] for k in keys)])
    return buffer.getvalue()


def history_from_csv(text):
    """The per-epoch history in the CSV text `history_csv` wrote, or None if it is not one.

    Empty cells are None; the `epoch` column (1, 2, ...) is checked and left out.
    """
    try:
        rows = list(csv.reader(io.StringIO(text)))
        header, rows = rows[0], rows[1:]
        if header[:1] != ["epoch"] or [row[0] for row in rows] != [
                str(epoch) for epoch in range(1, len(rows) + 1)]:
            return None
        history = {key: [] for key in header[1:]}
        for row in rows:
            for key, cell in zip(header[1:], row[1:], strict=True):
                value = None if cell == "" else float(cell)
                history[key].append(int(value) if key == "phase" and value is not None
                                    else value)
        return history
    except (IndexError, ValueError):
        return None


def write_run_report(output, *, model, history, metrics, settings, extra_figures=(),
                     optimizers=None):
    """Writes a run's files to `output`, each atomically.

    Writes `model.keras` (when `model` is given), `history.csv`, `config.yaml`
    (the resolved settings), `metrics.json`, `learning_curves.png`,
    `schedule.png` (the learning rate and momentum actually applied), the PNGs
    of `extra_figures`, and `report.md`, which shows them together. A history
    with a `"phase"` entry (from `fine_tune`) gets the phase boundaries drawn
    on the learning curves. When `metrics` has a `kept_epoch` (the epoch whose
    weights the model holds, counted from 1) it is marked on the learning
    curves and said in `report.md`, with `kept_by` (`"early_stopping"`,
    `"last_epoch"`, or `"best_of_both_phases"` when `fine_tune`'s guard chose
    among the epochs of both phases; `"phase_2_start"`, with no `kept_epoch`,
    when it kept the weights phase 2 started from, with no phase 1); a
    `resumed_at_epoch` says that an interrupted run was resumed there.

    Args:
        output: str or Path, the folder.
        model: the trained Keras model, or None.
        history: dict of per-epoch lists (`History.history`).
        metrics: dict of final metrics (JSON-serialisable).
        settings: dict, the resolved config.
        extra_figures: iterable of `(file_name, title, draw)` where `draw(ax)`
            draws on a matplotlib Axes.
        optimizers: list of the optimizers that trained the model, one after
            the other (the two phases of `fine_tune`), or None for
            `[model.optimizer]`. Their schedules are drawn end to end in
            `schedule.png`.

    Returns:
        The path of `report.md`.
    """
    import yaml

    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    figures = []
    if model is not None:
        _io.save_model(model, output / "model.keras")
    _io.write_text(output / "history.csv", history_csv(history))
    _io.write_text(output / "config.yaml", yaml.safe_dump(settings, sort_keys=False))
    _io.write_text(output / "metrics.json", json.dumps(metrics, indent=2) + "\n")

    if history:
        figure = _figure()
        metric_names = [m for m in ("loss", "accuracy", "mae") if m in history]
        axes = figure.subplots(1, len(metric_names), squeeze=False)[0]
        for ax, metric in zip(axes, metric_names):
            plots.plot_learning_curves(history, metric, ax=ax,
                                       kept_epoch=metrics.get("kept_epoch"))
            _mark_phases(ax, history.get("phase"))
        figure.set_size_inches(5 * len(metric_names), 4)
        _save_figure(figure, output / "learning_curves.png")
        figures.append(("learning_curves.png", "Learning curves"))
    if optimizers is None and model is not None and getattr(model, "optimizer", None):
        optimizers = [model.optimizer]
    if optimizers:
        figure = _figure()
        _plot_schedules(optimizers, figure.subplots())
        _save_figure(figure, output / "schedule.png")
        figures.append(("schedule.png", "Learning rate and momentum applied per step"))
    for file_name, title, draw in extra_figures:
        figure = _figure()
        draw(figure.subplots())
        _save_figure(figure, output / file_name)
        figures.append((file_name, title))

    lines = [f"# Run report: {settings.get('recipe', 'run')}", ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {key} | {_format(value)} |" for key, value in metrics.items()]
    lines += [""] + _run_notes(metrics)
    lines += ["Files: `model.keras`, `history.csv`, `config.yaml`, `metrics.json`.", ""]
    if (output / TENSORBOARD_FOLDER).is_dir():
        lines += ["TensorBoard: each epoch's losses, metrics, learning rate and momentum are in "
                  f"`{TENSORBOARD_FOLDER}/` (`tensorboard --logdir {TENSORBOARD_FOLDER}`).", ""]
    for file_name, title in figures:
        lines += [f"## {title}", "", f"![{title}]({file_name})", ""]
    lines += ["## Settings", "", "```yaml", yaml.safe_dump(settings, sort_keys=False).rstrip(),
              "```", ""]
    _io.write_text(output / "report.md", "\n".join(lines))
    return output / "report.md"


def kept_weights_text(metrics, markdown=True):
    """Which weights the saved model holds, from `metrics`' `kept_epoch` and `kept_by`
    (e.g. "the weights of epoch 3 (the last epoch: early stopping restored none)"); ""
    when not known. The CLI's summary line and `report.md` say it in these words
    (`markdown`: `val_loss` in backquotes)."""
    how, kept = metrics.get("kept_by"), metrics.get("kept_epoch")
    code = "`" if markdown else ""
    if how == "phase_2_start":
        return (f"the weights phase 2 started from: no epoch of phase 2 improved "
                f"{code}val_loss{code} on them, and fine_tune kept them")
    if kept is None:
        return ""
    if how == "best_of_both_phases":
        phase_1 = metrics.get("phase_1_epochs_run", 0)
        how = (f"the best {code}val_loss{code} of both phases, in phase 2" if kept > phase_1
               else f"phase 1's, the head's: no epoch of phase 2 improved {code}val_loss{code} "
               "on them, and fine_tune went back to them")
    else:
        how = {"early_stopping": f"restored by early stopping, the epoch with the lowest "
               f"{code}val_loss{code} it watched",
               "last_epoch": "the last epoch: early stopping restored none"}.get(how, how)
    return f"the weights of epoch {kept} ({how})"


def _run_notes(metrics):
    """Sentences of `report.md` on which weights were kept and on a resumed run."""
    notes = []
    kept = metrics.get("kept_epoch")
    text = kept_weights_text(metrics)
    if text:
        figures = ", ".join(f"{key[len('kept_'):]} {_format(value)}" for key, value in
                            metrics.items() if key.startswith("kept_") and key != "kept_by"
                            and key != "kept_epoch")
        notes.append(f"The saved model holds {text}" + (f": {figures}." if figures else "."))
        lowest = metrics.get("lowest_val_loss_epoch")
        if kept is not None and lowest is not None and lowest != kept:
            value = _format(metrics["lowest_val_loss"])
            notes.append(f"The lowest `val_loss` of the run, {value}, was at epoch {lowest}; "
                         "those weights were not kept.")
    resumed = metrics.get("resumed_at_epoch")
    if resumed is not None:
        notes.append(f"This run was interrupted and resumed at epoch {resumed} from its backup: "
                     f"epochs 1-{resumed - 1} come from the run before the interruption."
                     if resumed > 1 else "This run was interrupted and resumed from its backup "
                     "at epoch 1.")
    return [" ".join(notes), ""] if notes else []


def _mark_phases(ax, phases):
    """Dashed lines where a new training phase starts (epochs are numbered from 1)."""
    if not phases:
        return
    for i in range(1, len(phases)):
        if phases[i] != phases[i - 1]:
            ax.axvline(i + 0.5, color="grey", linestyle="--", linewidth=1)
            ax.annotate(f"phase {phases[i]}", (i + 0.5, 1), xycoords=("data", "axes fraction"),
                        xytext=(3, -12), textcoords="offset points", color="grey")


def _plot_schedules(optimizers, ax):
    """The schedules applied by `optimizers`, one after the other, on `ax`."""
    import keras

    if len(optimizers) == 1:
        optimizer = optimizers[0]
        steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
        plots.plot_schedule(internals.default_optimizer(optimizer), num_steps=steps, ax=ax)
        return
    twin, offset = None, 0
    for phase, optimizer in enumerate(optimizers, start=1):
        steps = int(keras.ops.convert_to_numpy(optimizer.iterations))
        values = plots.applied_schedule(internals.default_optimizer(optimizer), num_steps=steps)
        x = values["steps"] + offset
        ax.plot(x, values["learning_rate"], color="tab:blue")
        if values["momentum"] is not None:
            twin = twin or ax.twinx()
            twin.plot(x, values["momentum"], color="tab:orange")
        if phase > 1:
            ax.axvline(offset - 0.5, color="grey", linestyle="--", linewidth=1)
        offset += max(steps, 1)
    ax.set_xlabel("optimizer step (all phases)")
    ax.set_ylabel("learning rate", color="tab:blue")
    ax.set_yscale("log")
    if twin is not None:
        twin.set_ylabel("momentum / beta_1", color="tab:orange")
    ax.set_title("schedule applied, phase after phase")


def _format(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)
