"""A hand-written jitted JAX training loop: the yardstick of `bench_speed.py --only backends`.

Pure JAX and NumPy, no Keras: the 5x100 default DNN (`Dense(100, use_bias=False)` with
He-normal weights -> BatchNorm in training mode, its moving statistics kept -> ELU, five
times; a softmax `Dense(10)`), sparse categorical cross-entropy, Nadam written out with
Keras's formula and defaults at a constant learning rate of 1e-3. Batches of 32, shuffled
every epoch; 32 steps per compiled call (`jax.lax.scan`), the last call of an epoch shorter,
and the remainder batch (fewer than 32 samples) a step of its own, as Keras's `fit` runs it.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

BATCH, STEPS_PER_CALL = 32, 32
# Keras's defaults: Nadam(learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
# BatchNormalization(momentum=0.99, epsilon=1e-3).
LEARNING_RATE, BETA_1, BETA_2, EPSILON = 1e-3, 0.9, 0.999, 1e-7
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3


def init(key, inputs, units=100, layers=5, classes=10):
    """Parameters (trained) and BatchNorm moving statistics (not), as Keras initialises them."""
    params, stats = {"hidden": []}, []
    for _ in range(layers):
        key, sub = jax.random.split(key)
        # he_normal: a normal truncated at 2 standard deviations, rescaled to sqrt(2 / fan_in).
        scale = np.sqrt(2.0 / inputs) / 0.87962566103423978
        kernel = scale * jax.random.truncated_normal(sub, -2.0, 2.0, (inputs, units))
        params["hidden"].append({"kernel": kernel, "gamma": jnp.ones(units),
                                 "beta": jnp.zeros(units)})
        stats.append({"mean": jnp.zeros(units), "variance": jnp.ones(units)})
        inputs = units
    key, sub = jax.random.split(key)
    limit = np.sqrt(6.0 / (inputs + classes))  # glorot_uniform
    params["output"] = {"kernel": jax.random.uniform(sub, (inputs, classes), minval=-limit,
                                                     maxval=limit),
                        "bias": jnp.zeros(classes)}
    return params, stats


def _forward(params, stats, x):
    """Logits, and the moving statistics updated with this batch's (training mode)."""
    new_stats = []
    for layer, moving in zip(params["hidden"], stats):
        h = x @ layer["kernel"]
        mean, variance = jnp.mean(h, axis=0), jnp.var(h, axis=0)
        h = (h - mean) * jax.lax.rsqrt(variance + BN_EPSILON) * layer["gamma"] + layer["beta"]
        x = jax.nn.elu(h)
        new_stats.append({
            "mean": moving["mean"] * BN_MOMENTUM + mean * (1 - BN_MOMENTUM),
            "variance": moving["variance"] * BN_MOMENTUM + variance * (1 - BN_MOMENTUM)})
    return x @ params["output"]["kernel"] + params["output"]["bias"], new_stats


def _loss(params, stats, x, y):
    logits, new_stats = _forward(params, stats, x)
    log_probabilities = jax.nn.log_softmax(logits)
    loss = -jnp.mean(jnp.take_along_axis(log_probabilities, y[:, None], axis=1))
    correct = jnp.sum(jnp.argmax(logits, axis=1) == y)
    return loss, (new_stats, correct)


def _nadam(params, grads, opt):
    """One Nadam update, Keras's `Nadam.update_step` (and its `u_product`) written out."""
    step = opt["iterations"] + 1.0
    u_t = BETA_1 * (1.0 - 0.5 * 0.96 ** step)
    u_t_1 = BETA_1 * (1.0 - 0.5 * 0.96 ** (step + 1.0))
    u_product = opt["u_product"] * u_t
    u_product_next = u_product * u_t_1
    beta_2_power = BETA_2 ** step

    def update(p, g, m, v):
        m = m + (g - m) * (1 - BETA_1)
        v = v + (g * g - v) * (1 - BETA_2)
        m_hat = u_t_1 * m / (1 - u_product_next) + (1 - u_t) * g / (1 - u_product)
        v_hat = v / (1 - beta_2_power)
        return p - m_hat * LEARNING_RATE / (jnp.sqrt(v_hat) + EPSILON), m, v

    updated = jax.tree.map(update, params, grads, opt["m"], opt["v"])
    is_triple = lambda node: isinstance(node, tuple)  # noqa: E731
    pick = lambda i: jax.tree.map(lambda t: t[i], updated, is_leaf=is_triple)  # noqa: E731
    return pick(0), {"m": pick(1), "v": pick(2), "u_product": u_product,
                     "iterations": opt["iterations"] + 1.0}


def _step(state, batch):
    params, stats, opt = state
    x, y = batch
    (loss, (stats, correct)), grads = jax.value_and_grad(_loss, has_aux=True)(
        params, stats, x, y)
    params, opt = _nadam(params, grads, opt)
    return (params, stats, opt), (loss, correct)


@jax.jit
def _run_steps(state, x, y, indices):
    """`len(indices)` steps in one compiled call; `indices` (steps, 32) rows of `x` and `y`."""
    def body(state, rows):
        return _step(state, (x[rows], y[rows]))
    state, (losses, correct) = jax.lax.scan(body, state, indices)
    return state, losses[-1], jnp.sum(correct)


@jax.jit
def _run_one(state, x, y):
    state, (loss, correct) = _step(state, (x, y))
    return state, loss, correct


def train(x, y, epochs, seed=0):
    """Trains one warm-up epoch (compiling), then `epochs` timed ones.

    Returns:
        `(seconds, accuracy)`: the seconds of each timed epoch, and the training accuracy
        of the last epoch (its running mean over the epoch's batches, as Keras reports it).
    """
    params, stats = init(jax.random.PRNGKey(seed), x.shape[1])
    zeros = jax.tree.map(jnp.zeros_like, params)
    state = (params, stats, {"m": zeros, "v": zeros, "u_product": jnp.float32(1.0),
                             "iterations": jnp.float32(0.0)})
    x_device, y_device = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    rng = np.random.default_rng(seed)
    full = len(x) // BATCH
    seconds, accuracy = [], None
    for epoch in range(epochs + 1):
        started = time.perf_counter()
        order = rng.permutation(len(x))
        batches = order[:full * BATCH].reshape(full, BATCH)
        correct = 0
        for start in range(0, full, STEPS_PER_CALL):
            state, loss, right = _run_steps(state, x_device, y_device,
                                            jnp.asarray(batches[start:start + STEPS_PER_CALL]))
            correct = correct + right
        if len(x) % BATCH:
            rest = order[full * BATCH:]
            state, loss, right = _run_one(state, x_device[rest], y_device[rest])
            correct = correct + right
        accuracy = float(correct) / len(x)  # waits for the epoch's last step
        jax.block_until_ready(state)
        if epoch:  # the first compiled every call shape
            seconds.append(time.perf_counter() - started)
    return seconds, accuracy
