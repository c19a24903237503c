"""Calibration of predicted probabilities: expected calibration error, reliability diagram.

Keras has no calibration metric. These show whether Monte-Carlo averaging (for
instance `MCDropoutPredictor(model).predict(x).mean`) made a classifier's
probabilities better calibrated than `model.predict(x)`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_recipes import _validation as v

__all__ = ["ReliabilityDiagram", "expected_calibration_error", "reliability_diagram"]


@dataclasses.dataclass(frozen=True)
class ReliabilityDiagram:
    """Per-bin confidence and accuracy: the data of a reliability diagram.

    Attributes:
        bin_edges: `(num_bins + 1,)` edges of the equal-width confidence bins.
        confidence: `(num_bins,)` mean confidence of the predictions in each
            bin (NaN for an empty bin).
        accuracy: `(num_bins,)` fraction of correct predictions in each bin (NaN
            for an empty bin).
        count: `(num_bins,)` number of predictions in each bin.
        expected_calibration_error: float, `sum_b count_b / n * |accuracy_b -
            confidence_b|`.
    """

    bin_edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    expected_calibration_error: float

    def plot(self, ax=None, label=None):
        """Draws the diagram (accuracy per bin against the diagonal) with matplotlib.

        Args:
            ax: a matplotlib `Axes` or None for the current one. Defaults to `None`.
            label: str or None, legend label of the bars. Defaults to `None`.

        Returns:
            The matplotlib `Axes`.

        Raises:
            ImportError: if matplotlib is not installed.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "ReliabilityDiagram.plot needs matplotlib: "
                'pip install "keras-recipes[cli]"'
            ) from error
        ax = ax if ax is not None else plt.gca()
        centers = (self.bin_edges[:-1] + self.bin_edges[1:]) / 2
        widths = np.diff(self.bin_edges)
        ax.bar(centers, np.nan_to_num(self.accuracy), width=widths, edgecolor="black",
               alpha=0.6, label=label or f"ECE = {self.expected_calibration_error:.3f}")
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend()
        return ax


def _confidence_and_correct(y_true, y_prob):
    """Top-label confidence and correctness, validated."""
    prob = np.asarray(y_prob, dtype="float64")
    label = np.asarray(y_true)
    if prob.ndim == 0 or prob.size == 0:
        v.fail("y_prob", f"<array of shape {prob.shape}>",
               "a non-empty array of probabilities of shape (n, num_classes) or (n,)")
    if not np.all(np.isfinite(prob)) or prob.min() < 0 or prob.max() > 1:
        v.fail("y_prob", "<array with values outside [0, 1]>",
               "probabilities in [0, 1] (apply softmax or sigmoid to logits first)")
    binary = prob.ndim == 1 or (prob.ndim == 2 and prob.shape[1] == 1)
    if prob.ndim > 2:
        v.fail("y_prob", f"<array of shape {prob.shape}>",
               "an array of shape (n, num_classes) or (n,)")
    n = prob.shape[0]
    if binary:
        p1 = prob.reshape(n)
        predicted = (p1 > 0.5).astype("int64")
        confidence = np.where(predicted == 1, p1, 1.0 - p1)
        num_classes = 2
    else:
        predicted = np.argmax(prob, axis=1)
        confidence = prob[np.arange(n), predicted]
        num_classes = prob.shape[1]
    if label.ndim == 2 and label.shape[1] == num_classes and not binary:
        label = np.argmax(label, axis=1)  # one-hot
    elif label.ndim == 2 and label.shape[1] == 1:
        label = label[:, 0]
    if label.shape != (n,):
        v.fail("y_true", f"<array of shape {np.asarray(y_true).shape}>",
               f"{n} integer labels (shape ({n},)) or one-hot rows matching y_prob")
    if not np.all(np.equal(np.mod(label, 1), 0)) or label.min() < 0 or label.max() >= num_classes:
        v.fail("y_true", f"<labels in [{label.min()}, {label.max()}]>",
               f"integer labels in [0, {num_classes - 1}]")
    return confidence, (predicted == label.astype("int64")).astype("float64")


def reliability_diagram(y_true, y_prob, num_bins=15):
    """The data of a reliability diagram: accuracy against confidence per bin.

    Each prediction's confidence is the probability of its predicted (top)
    class; predictions are grouped in `num_bins` equal-width confidence bins
    `(lo, hi]` (the first bin also holds confidence 0), as in Guo et al.,
    "On Calibration of Modern Neural Networks" (2017). A perfectly calibrated
    model has accuracy equal to confidence in every bin. Keras has no
    calibration metric, hence this helper.

    Args:
        y_true: integer class labels of shape `(n,)`, or one-hot labels of shape
            `(n, num_classes)`.
        y_prob: predicted probabilities, shape `(n, num_classes)`, or `(n,)` /
            `(n, 1)` with the probability of class 1 for a binary classifier.
            For instance `MCDropoutPredictor(...).predict(x).mean` or
            `model.predict(x)`.
        num_bins: int, number of bins. Defaults to `15`.

    Returns:
        A `ReliabilityDiagram` with `bin_edges`, `confidence`, `accuracy`,
        `count`, `expected_calibration_error` and a `plot()` method.

    Raises:
        ValueError: if the probabilities are outside [0, 1], the labels are not
            integers in `[0, num_classes)`, or the shapes do not match.

    Example:

    >>> import numpy as np, keras_recipes
    >>> y_prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> y_true = np.array([0, 1, 1, 0])
    >>> diagram = keras_recipes.uncertainty.reliability_diagram(y_true, y_prob, num_bins=5)
    >>> diagram.count.tolist()
    [0, 0, 1, 2, 1]
    >>> round(diagram.expected_calibration_error, 3)
    0.25
    """
    num_bins = v.check_int("num_bins", num_bins, min_value=1)
    confidence, correct = _confidence_and_correct(y_true, y_prob)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # Bin b holds confidences in (edges[b], edges[b + 1]]; confidence 0 goes to bin 0.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
    count = np.bincount(index, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=num_bins) / count
        accuracy = np.bincount(index, weights=correct, minlength=num_bins) / count
    filled = count > 0
    ece = float(np.sum(count[filled] / len(confidence)
                       * np.abs(accuracy[filled] - mean_confidence[filled])))
    return ReliabilityDiagram(edges, mean_confidence, accuracy, count, ece)


def expected_calibration_error(y_true, y_prob, num_bins=15):
    """The expected calibration error (ECE) of predicted probabilities.

    `ECE = sum_b (n_b / n) * |accuracy_b - confidence_b|` over `num_bins`
    equal-width bins of top-label confidence (Guo et al., 2017): 0 for a
    perfectly calibrated classifier, up to 1. Compare
    `expected_calibration_error(y, model.predict(x))` with
    `expected_calibration_error(y, MCDropoutPredictor(model).predict(x).mean)`
    to see whether Monte-Carlo averaging improved calibration.

    Args:
        y_true: integer class labels of shape `(n,)`, or one-hot labels.
        y_prob: probabilities of shape `(n, num_classes)`, or `(n,)` / `(n, 1)`
            for a binary classifier (probability of class 1).
        num_bins: int, number of confidence bins. Defaults to `15`.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: as `reliability_diagram`.

    Example:

    >>> import numpy as np, keras_recipes
    >>> y_prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> ece = keras_recipes.uncertainty.expected_calibration_error([0, 1, 1, 0], y_prob, 5)
    >>> round(ece, 3)
    0.25
    """
    return reliability_diagram(y_true, y_prob, num_bins).expected_calibration_error
