"""Pure interpolation functions that the 1cycle schedules are built from.

Each anneal function maps ``remaining``, the fraction of the phase still to go
(1 at the phase's first step, 0 at its last), to a value between ``start`` and
``end``, given as ``end`` and ``rise = start - end``. Working with the *remaining*
fraction instead of the elapsed one keeps float32 precise where the learning rate
is tiny: PyTorch's ``end + (start - end) / 2 * (cos(pi * pct) + 1)`` loses most of
its digits to cancellation as ``pct -> 1``, while the equal
``end + (start - end) * sin(pi/2 * remaining)**2`` does not.

The schedule's numbers (phase ends and lengths, values and rises) are computed
once in Python float64 by `one_cycle_constants` and only then rounded to float32,
whether the compiled step sees them as constants or reads them from a variable:
so both give the same values to the last bit.
"""

from __future__ import annotations

import math

from keras import ops

__all__ = [
    "ANNEAL_FUNCTIONS",
    "one_cycle_constants",
    "one_cycle_phase_ends",
    "piecewise_anneal",
    "unpack_constants",
]


def _cosine_anneal(end, rise, remaining):
    """Cosine annealing to `end` (remaining=0) from `end + rise` (remaining=1)."""
    return end + rise * ops.square(ops.sin((math.pi / 2.0) * remaining))


def _linear_anneal(end, rise, remaining):
    """Linear annealing to `end` (remaining=0) from `end + rise` (remaining=1)."""
    return end + rise * remaining


ANNEAL_FUNCTIONS = {"cos": _cosine_anneal, "linear": _linear_anneal}


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


def one_cycle_constants(start_step, total_steps, pct_start, three_phase, phase_values):
    """Every number a 1cycle schedule evaluates with, in Python float64, as a flat list.

    Layout: ``[start_step, last_step]`` followed, for each phase, by
    ``[end_step, length, end_value, rise]`` (``length = end_step - previous end``,
    ``rise = start_value - end_value``). `unpack_constants` reads it back.

    Args:
        start_step: int, the optimizer step at which the cycle begins.
        total_steps: int, the number of steps in the cycle.
        pct_start: float, the fraction of the cycle spent warming up.
        three_phase: bool, whether the cycle has three phases.
        phase_values: list of `(start, end)` value pairs, one per phase.
    """
    ends = one_cycle_phase_ends(total_steps, pct_start, three_phase)
    starts = [0.0] + ends[:-1]
    constants = [float(start_step), float(total_steps - 1)]
    for start_step_, end_step, (start, end) in zip(starts, ends, phase_values):
        constants += [end_step, end_step - start_step_, float(end), float(start) - float(end)]
    return constants


def _num_constants(num_phases):
    """The length of `one_cycle_constants`'s list for a cycle of `num_phases` phases."""
    return 2 + 4 * num_phases


def unpack_constants(constants, num_phases):
    """`(start_step, last_step, phases)` from a flat list or a 1-D tensor of constants,
    with `phases` a list of `(end_step, length, end_value, rise)`."""
    phases = [tuple(constants[2 + 4 * i + k] for k in range(4)) for i in range(num_phases)]
    return constants[0], constants[1], phases


def piecewise_anneal(step, phases, anneal):
    """Evaluates a piecewise annealed schedule at `step` (a float tensor).

    Args:
        step: float tensor, the position in the cycle (0-based).
        phases: list of `(end_step, length, end_value, rise)`, one per phase,
            as `unpack_constants` gives them (Python floats or float32 scalars).
        anneal: one of the functions of `ANNEAL_FUNCTIONS`.

    Returns:
        The value of the first phase whose end is >= `step` (the last phase
        past the end), as PyTorch's `OneCycleLR.get_lr` picks it.
    """
    result = None
    for end_step, length, end, rise in reversed(phases):
        remaining = (end_step - step) / length
        value = anneal(end, rise, remaining)
        result = value if result is None else ops.where(step <= end_step, value, result)
    return result
