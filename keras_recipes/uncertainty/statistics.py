"""Monte-Carlo statistics of dropout samples: mean, spread, entropy, mutual information.

Written in `keras.ops`, so that they run inside the compiled sampler on any backend.
"""

from __future__ import annotations

from keras import ops

__all__ = ["mc_statistics"]


def _xlogx(p):
    positive = ops.greater(p, 0.0)
    return ops.where(positive, p * ops.log(ops.where(positive, p, 1.0)), 0.0)


def _shifted_mean(values, axis):
    """Mean along `axis`, computed as first + mean(differences to the first).

    Identical samples give back the first sample exactly (no rounding from the
    summation), so with every dropout rate at 0 the mean equals the plain
    prediction bit for bit and the standard deviation is exactly 0.
    """
    first = ops.take(values, [0], axis=axis)
    diff = values - first
    mean_diff = ops.mean(diff, axis=axis)
    return ops.squeeze(first, axis=axis) + mean_diff, diff, mean_diff


def mc_statistics(samples, kind, from_logits=False):
    """Monte-Carlo statistics of `samples` of shape `(batch, num_samples, ...)`.

    The mean and the population standard deviation over the samples; for a
    classifier also the predictive entropy `H[mean]` (total uncertainty, in
    nats), the mean entropy of the samples (aleatoric part) and their difference,
    the mutual information (epistemic part, clipped at 0). `MCDropoutPredictor`
    computes these inside its compiled sampler; they are exposed for samples
    drawn some other way.

    Args:
        samples: tensor, the model outputs, samples along axis 1.
        kind: str, `"softmax"`, `"sigmoid"` or `"regression"`.
        from_logits: bool, whether the samples are logits (passed through a
            softmax or sigmoid first). Defaults to `False`.

    Returns:
        A dict of tensors with `mean` and `std`, plus `entropy`, `mean_entropy`
        and `mutual_information` for the classification kinds, and the
        `probabilities` of each sample when `from_logits=True`.

    Example:

    >>> import keras, numpy as np
    >>> from keras_recipes.uncertainty import mc_statistics
    >>> samples = np.array([[[0.9, 0.1], [0.5, 0.5]]], "float32")  # 1 input, 2 samples
    >>> out = mc_statistics(samples, "softmax")
    >>> keras.ops.convert_to_numpy(out["mean"]).astype("float64").round(2).tolist()
    [[0.7, 0.3]]
    """
    y = ops.cast(samples, "float32")
    if from_logits:
        y = ops.softmax(y, axis=-1) if kind == "softmax" else ops.sigmoid(y)
    mean, diff, mean_diff = _shifted_mean(y, axis=1)
    variance = ops.mean(ops.square(diff), axis=1) - ops.square(mean_diff)
    out = {"mean": mean, "std": ops.sqrt(ops.maximum(variance, 0.0))}
    if kind == "regression":
        return out
    if kind == "softmax":
        entropy = -ops.sum(_xlogx(mean), axis=-1)
        sample_entropy = -ops.sum(_xlogx(y), axis=-1)
    else:
        entropy = -(_xlogx(mean) + _xlogx(1.0 - mean))
        sample_entropy = -(_xlogx(y) + _xlogx(1.0 - y))
    mean_entropy, _, _ = _shifted_mean(sample_entropy, axis=1)
    out["entropy"] = entropy
    out["mean_entropy"] = mean_entropy
    out["mutual_information"] = ops.maximum(entropy - mean_entropy, 0.0)
    if from_logits:
        out["probabilities"] = y
    return out
