"""One place for argument checks and their messages.

Every public callable validates its arguments at entry with these helpers, so that
users get one uniform message shape::

    Argument `pct_start` must be in the range (0, 1). Received: pct_start=1.5

`ValueError` is raised for bad values and `TypeError` for bad types. Each error
carries the argument it is about: `error.argument` (its name) and `error.value`
(what was received), read with `argument_of`, so that callers (the config layer,
the CLI) can say which setting was wrong without parsing the message.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import sys
import warnings
from collections.abc import Iterable
from typing import Any

__all__ = [
    "Described",
    "argument_of",
    "check_bool",
    "check_choice",
    "check_dict",
    "check_int",
    "check_number",
    "check_same_length",
    "check_seed",
    "check_shape",
    "check_verbose",
    "did_you_mean",
    "fail",
    "warn_deprecated",
]


class Described(str):
    """A description of a received value (e.g. an array's shape), shown without quotes."""

    def __repr__(self):
        return str(self)


def _received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r}"


def fail(name: str, value: Any, expected: str, hint: str = "", error=ValueError):
    """Raises `error` with the standard message shape, carrying `name` and `value`.

    The exception is a plain instance of `error` (`ValueError` or `TypeError`:
    what users catch and what the CLI names in its messages) with two more
    attributes: `argument`, the argument's name, and `value`, the received value.

    A `hint` (how to fix it) follows the message: after a space when it starts
    with "(" or ".", directly when it starts with "," (", which could not be
    loaded: ..."), and after ". " otherwise.
    """
    message = f"Argument `{name}` must be {expected}. {_received(name, value)}"
    if hint:
        if hint.startswith(","):
            message += hint
        elif hint.startswith(("(", ".")):
            message += f" {hint}"
        else:
            message += f". {hint}"
    exception = error(message)
    exception.argument = name
    exception.value = value
    raise exception


def argument_of(error: BaseException) -> str | None:
    """The name of the argument an error raised by `fail` is about, else None."""
    return getattr(error, "argument", None)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_bool(name: str, value: Any) -> bool:
    """Checks that `value` is a Python bool."""
    if not isinstance(value, bool):
        fail(name, value, "a bool (True or False)", error=TypeError)
    return value


def check_int(
    name: str,
    value: Any,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """Checks that `value` is an integer within `[min_value, max_value]`."""
    if value is None and allow_none:
        return None
    if not _is_integer(value):
        fail(name, value, _describe_int(min_value, max_value, allow_none), error=TypeError)
    if (min_value is not None and value < min_value) or (
        max_value is not None and value > max_value
    ):
        fail(name, value, _describe_int(min_value, max_value, allow_none))
    return int(value)


def check_seed(value: Any, *, allow_none: bool = True, name: str = "seed") -> int | None:
    """Checks a random seed: a non-negative integer, or None where that is allowed.

    The one rule for every `seed` of the package: NumPy's generators
    (`np.random.default_rng`, which shuffles and splits data) and
    `keras.utils.set_random_seed` refuse negative seeds, so a negative seed is
    refused at the entry for all of them, not deep inside for some.
    """
    return check_int(name, value, min_value=0, allow_none=allow_none)


def check_verbose(value: Any, name: str = "verbose") -> int:
    """Checks a `verbose` argument as Keras's `fit` takes it: 0, 1, 2 or "auto".

    For a function that prints a summary rather than a progress bar, 1 and 2
    both print it (2 is what Keras users pass for "one line per epoch") and
    `"auto"` means 1, as in Keras. Returns the int (`"auto"` resolved to 1).
    """
    if isinstance(value, str) and value == "auto":
        return 1
    if not (_is_integer(value) and value in (0, 1, 2)):
        wrong_type = not (_is_integer(value) or isinstance(value, str))
        fail(name, value, '0 (silent), 1, 2 or "auto"',
             error=TypeError if wrong_type else ValueError)
    return int(value)


def _describe_int(min_value, max_value, allow_none) -> str:
    if min_value == 1 and max_value is None:
        text = "a positive integer"
    elif min_value == 0 and max_value is None:
        text = "a non-negative integer"
    elif min_value is not None and max_value is not None:
        text = f"an integer in the range [{min_value}, {max_value}]"
    elif min_value is not None:
        text = f"an integer >= {min_value}"
    elif max_value is not None:
        text = f"an integer <= {max_value}"
    else:
        text = "an integer"
    return text + (" or None" if allow_none else "")


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allow_none: bool = False,
) -> float | None:
    """Checks that `value` is a finite real number inside the given interval.

    With both bounds the message reads "in the range (0, 1)" using interval
    brackets; with one bound it reads "> 0" or ">= 0".
    """
    if value is None and allow_none:
        return None
    expected = _describe_interval(low, high, low_inclusive, high_inclusive)
    if allow_none:
        expected += " or None"
    if not _is_real(value):
        fail(name, value, expected, error=TypeError)
    value = float(value)
    if not math.isfinite(value):
        fail(name, value, expected)
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        fail(name, value, expected)
    return value


def _describe_interval(low, high, low_inclusive, high_inclusive) -> str:
    if low is not None and high is not None:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        return f"in the range {left}{_fmt(low)}, {_fmt(high)}{right}"
    if low is not None:
        return f"a number {'>=' if low_inclusive else '>'} {_fmt(low)}"
    if high is not None:
        return f"a number {'<=' if high_inclusive else '<'} {_fmt(high)}"
    return "a finite number"


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def check_choice(name: str, value: Any, choices: Iterable[str], *, case_sensitive=False) -> str:
    """Checks that `value` is one of `choices`; returns it normalised to lower case.

    Unknown names get the list of valid ones and the closest match.
    """
    choices = list(choices)
    if not isinstance(value, str):
        fail(name, value, "one of " + ", ".join(repr(c) for c in choices), error=TypeError)
    key = value if case_sensitive else value.lower()
    lookup = {c if case_sensitive else c.lower(): c for c in choices}
    if key in lookup:
        return lookup[key]
    fail(
        name,
        value,
        "one of " + ", ".join(repr(c) for c in choices),
        hint=did_you_mean(key, lookup),
    )


def check_dict(name: str, value: Any, expected: str) -> dict:
    """Checks a dict of keyword arguments (`optimizer_kwargs`, ...); returns a copy, empty
    for None. `expected` describes the dict ("a dict of optimizer arguments")."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(name, value, f"{expected} or None", error=TypeError)
    return dict(value)


def did_you_mean(key: str, lookup: dict[str, str]) -> str:
    """Returns "Did you mean 'x'?" for the closest name, or an empty string."""
    close = difflib.get_close_matches(key, list(lookup), n=1, cutoff=0.5)
    return f"Did you mean {lookup[close[0]]!r}?" if close else ""


def check_same_length(name: str, values: Any, reference_name: str, reference: Any) -> None:
    """Checks that the 1-D array `values` holds as many values as the 1-D array `reference`
    (the argument `reference_name`); the message shows how many each holds."""
    if values.shape != reference.shape:
        fail(name, f"<{values.size} values>",
             f"as long as `{reference_name}` ({reference.size} values)")


def check_shape(name: str, value: Any) -> tuple[int, ...]:
    """Checks an input shape without the batch dimension, e.g. `(64,)` or `(28, 28, 1)`."""
    if _is_integer(value):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value:
        fail(
            name,
            value,
            "a non-empty tuple of positive integers (the shape of one sample, without "
            "the batch dimension), e.g. (64,)",
            error=TypeError,
        )
    if not all(_is_integer(d) and d > 0 for d in value):
        fail(name, value, "a tuple of positive integers, e.g. (64,) or (28, 28, 1)")
    return tuple(int(d) for d in value)


_PACKAGE_FOLDER = os.path.dirname(os.path.abspath(__file__))


def warn_deprecated(message):
    """Issues a `DeprecationWarning` pointing at the caller's own code.

    The warning names the first frame outside keras_recipes, however deep inside the
    package the deprecated argument was noticed.
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_FOLDER):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)
