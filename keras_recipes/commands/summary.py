"""The figures of a finished run: its metrics and the summary printed at its end."""

from __future__ import annotations

import math

__all__ = ["print_summary", "training_metrics"]


def _floats(metrics):
    return [value for value in metrics.values() if isinstance(value, float)]


def training_metrics(history, seconds, kept=None, resumed_at=None):
    """The run's figures: epochs, those of the kept weights' epoch, the lowest `val_loss`.

    Args:
        history: dict of per-epoch lists of the whole run (None where not recorded).
        seconds: float, the training time of this process.
        kept: `(epoch from 1, how)` of the weights the model holds, or None (the
            epoch is None when they are those phase 2 started from, with no phase 1).
        resumed_at: int or None, the epoch (from 1) a resumed run started again at.
    """
    count = len(next((values for key, values in history.items() if key != "phase"), []))
    metrics = {"epochs_run": count, "train_seconds": round(seconds, 2)}
    phases = history.get("phase")
    if phases:
        for phase in sorted(set(phases)):
            metrics[f"phase_{phase}_epochs_run"] = phases.count(phase)
    if resumed_at is not None:
        metrics["resumed_at_epoch"] = resumed_at
    if kept is not None and kept[0] is None:
        metrics["kept_by"] = kept[1]
    elif kept is not None:
        epoch, how = kept
        metrics["kept_epoch"], metrics["kept_by"] = epoch, how
        for key, values in history.items():
            if key != "phase" and values[epoch - 1] is not None:
                metrics[f"kept_{key}"] = float(values[epoch - 1])
    val_loss = [(i, value) for i, value in enumerate(history.get("val_loss") or [])
                if value is not None]
    if val_loss:
        lowest, value = min(val_loss, key=lambda item: (math.isnan(item[1]), item[1]))
        metrics["lowest_val_loss_epoch"] = lowest + 1
        metrics["lowest_val_loss"] = float(value)
    return metrics


def print_summary(metrics, output):
    """Prints a finished run's figures, the weights kept and where the report is."""
    from keras_recipes import report

    width = max(len(key) for key in metrics)
    print("\nRun summary")
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {shown}")
    kept = report.kept_weights_text(metrics, markdown=False)
    if kept:
        print(f"Saved model: {kept}")
    if "test_accuracy" in metrics:
        print(f"Test accuracy: {metrics['test_accuracy']:.4f}")
    print(f"Report: {output / 'report.md'}")
    if (output / report.TENSORBOARD_FOLDER).is_dir():
        print(f"TensorBoard: tensorboard --logdir {output / report.TENSORBOARD_FOLDER}")
