"""Pure interpolation functions that the 1cycle schedules are built from.

Each anneal function maps ``remaining``, the fraction of the phase still to go
(1 at the phase's first step, 0 at its last), to a value between ``start`` and
``end``. Working with the *remaining* fraction instead of the elapsed one keeps
float32 precise where the learning rate is tiny: PyTorch's
``end + (start - end) / 2 * (cos(pi * pct) + 1)`` loses most of its digits to
cancellation as ``pct -> 1``, while the equal ``end + (start - end) * sin(pi/2 * remaining)**2``
does not.
"""

from __future__ import annotations

import math

from keras import ops


def cosine_anneal(start, end, remaining):
    """Cosine annealing from `start` (remaining=1) to `end` (remaining=0)."""
    return end + (start - end) * ops.square(ops.sin((math.pi / 2.0) * remaining))


def linear_anneal(start, end, remaining):
    """Linear annealing from `start` (remaining=1) to `end` (remaining=0)."""
    return end + (start - end) * remaining


ANNEAL_FUNCTIONS = {"cos": cosine_anneal, "linear": linear_anneal}


def one_cycle_phase_ends(total_steps: int, pct_start: float, three_phase: bool) -> list[float]:
    """The last step of each 1cycle phase, exactly as PyTorch's `OneCycleLR` places them.

    Phases start where the previous one ended (the first at step 0); the last
    phase always ends at ``total_steps - 1``. The ends are floats: PyTorch uses
    ``pct_start * total_steps - 1`` unrounded.
    """
    warmup_end = float(pct_start * total_steps) - 1
    if three_phase:
        return [warmup_end, float(2 * pct_start * total_steps) - 2, float(total_steps - 1)]
    return [warmup_end, float(total_steps - 1)]


def piecewise_anneal(step, phase_ends, phase_values, anneal):
    """Evaluates a piecewise annealed schedule at `step` (a float tensor).

    Args:
        step: float tensor, the position in the cycle (0-based).
        phase_ends: list of floats, the last step of each phase.
        phase_values: list of `(start, end)` value pairs, one per phase.
        anneal: one of the functions of `ANNEAL_FUNCTIONS`.

    Returns:
        The value of the first phase whose end is >= `step` (the last phase
        past the end), as PyTorch's `OneCycleLR.get_lr` picks it.
    """
    phase_starts = [0.0] + phase_ends[:-1]
    result = None
    for start_step, end_step, (start, end) in reversed(
        list(zip(phase_starts, phase_ends, phase_values))
    ):
        remaining = (end_step - step) / (end_step - start_step)
        value = anneal(start, end, remaining)
        result = value if result is None else ops.where(step <= end_step, value, result)
    return result
