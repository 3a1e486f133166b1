"""Declarative parameter validation.

Each public function or parameter object declares the constraints of its parameters
once; :func:`check` turns a violation into a :class:`ValueError` (or :class:`TypeError`)
that names the parameter, the constraint and the value given, for example::

    ValueError: parameter 'p_effect' must be a number in [0, 1]; got 1.5
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = [
    "Constraint",
    "Interval",
    "Integer",
    "OneOf",
    "Instance",
    "ArrayLike",
    "Callable_",
    "check",
    "check_params",
    "fail",
]


def _fmt(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fail(name: str, expected: str, value: Any, *, exc: type[Exception] = ValueError) -> None:
    """Raise ``exc`` with the standard message for parameter ``name``.

    Parameters
    ----------
    name : str
        Name of the offending parameter as the user wrote it.
    expected : str
        Human-readable constraint, e.g. ``"a number in [0, 1]"``.
    value : object
        The value that was given.
    exc : type of Exception, default ValueError
        Exception class to raise.
    """
    raise exc(f"parameter {name!r} must be {expected}; got {_fmt(value)}")


class Constraint:
    """Base class: ``ok(value)`` says whether ``value`` satisfies it, ``describe()`` says what."""

    exc: type[Exception] = ValueError

    def ok(self, value: Any) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Interval(Constraint):
    """A finite real number in an interval; ``closed`` is one of "both", "left", "right", "neither".

    Infinite values never pass, whatever the bounds: a parameter set to ``inf`` fails here,
    not deep inside the computation.
    """

    low: float | None = None
    high: float | None = None
    closed: str = "both"
    allow_none: bool = False

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.allow_none
        if not _is_real(value) or not math.isfinite(float(value)):
            return False
        v = float(value)
        lo_closed = self.closed in ("both", "left")
        hi_closed = self.closed in ("both", "right")
        if self.low is not None and (v < self.low or (v == self.low and not lo_closed)):
            return False
        if self.high is not None and (v > self.high or (v == self.high and not hi_closed)):
            return False
        return True

    def describe(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        lb = "[" if self.closed in ("both", "left") and self.low is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        text = f"a number in {lb}{lo}, {hi}{rb}"
        if self.low is None or self.high is None:
            text = "a finite " + text[2:]
        return text + " or None" if self.allow_none else text


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not bool) in ``[low, high]``."""

    low: int | None = None
    high: int | None = None
    allow_none: bool = False

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.allow_none
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            return False
        if self.low is not None and value < self.low:
            return False
        if self.high is not None and value > self.high:
            return False
        return True

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            text = f"an integer in [{self.low}, {self.high}]"
        elif self.low is not None:
            text = f"an integer >= {self.low}"
        elif self.high is not None:
            text = f"an integer <= {self.high}"
        else:
            text = "an integer"
        return text + " or None" if self.allow_none else text


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of a fixed set of values."""

    options: tuple

    def ok(self, value: Any) -> bool:
        if isinstance(value, np.ndarray):
            return False
        try:
            return bool(value in self.options)
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


@dataclass(frozen=True)
class Instance(Constraint):
    """An instance of one of ``types``."""

    types: tuple
    label: str | None = None
    exc = TypeError

    def ok(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        if self.label:
            return self.label
        return "an instance of " + " or ".join(t.__name__ for t in self.types)


@dataclass(frozen=True)
class Callable_(Constraint):
    """A callable."""

    allow_none: bool = False

    def ok(self, value: Any) -> bool:
        return (value is None and self.allow_none) or callable(value)

    def describe(self) -> str:
        return "a callable" + (" or None" if self.allow_none else "")


@dataclass(frozen=True)
class ArrayLike(Constraint):
    """A finite numeric array with optional dimensionality and lower bound."""

    ndim: int | None = None
    low: float | None = None
    strict: bool = False
    allow_none: bool = False

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.allow_none
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return False
        if self.ndim is not None and arr.ndim != self.ndim:
            return False
        if not np.all(np.isfinite(arr)):
            return False
        if self.low is not None:
            if self.strict and np.any(arr <= self.low):
                return False
            if not self.strict and np.any(arr < self.low):
                return False
        return True

    def describe(self) -> str:
        dim = f"{self.ndim}-d " if self.ndim is not None else ""
        text = f"a finite {dim}numeric array"
        if self.low is not None:
            text += f" with all values {'>' if self.strict else '>='} {self.low:g}"
        return text + (" or None" if self.allow_none else "")


def check(name: str, value: Any, *constraints: Constraint) -> Any:
    """Check ``value`` against ``constraints`` (any one may hold) and return it.

    Parameters
    ----------
    name : str
        Parameter name used in the error message.
    value : object
        Value to check.
    *constraints : Constraint
        Alternatives; the value passes when at least one holds.

    Returns
    -------
    object
        ``value`` unchanged.

    Raises
    ------
    ValueError or TypeError
        When no constraint holds; the message names the parameter, the constraint and
        the value.
    """
    if any(c.ok(value) for c in constraints):
        return value
    expected = " or ".join(c.describe() for c in constraints)
    exc = TypeError if all(c.exc is TypeError for c in constraints) else ValueError
    fail(name, expected, value, exc=exc)
    return value  # unreachable


def check_params(values: Mapping[str, Any], spec: Mapping[str, Constraint | Iterable[Constraint]]) -> None:
    """Check every entry of ``values`` named in ``spec``.

    Parameters
    ----------
    values : mapping
        Parameter name to value.
    spec : mapping
        Parameter name to a constraint or a tuple of alternative constraints.
    """
    for name, cons in spec.items():
        if name not in values:
            continue
        alts = (cons,) if isinstance(cons, Constraint) else tuple(cons)
        check(name, values[name], *alts)
