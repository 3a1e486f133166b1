"""The predictor registry: names, parametrised names ("ladder(0.25)") and Predictor objects."""

from __future__ import annotations

import ast
import inspect

import pandas as pd

from .._validation import check_params

__all__ = ["Predictor", "register", "list_predictors", "get_predictor", "resolve"]

_REGISTRY: dict[str, type] = {}


class Predictor:
    """Base class of a predictor of known quality.

    A subclass stores its parameters in ``__init__`` (nothing else), declares their
    constraints in ``_spec`` (checked by :meth:`validate` before any work), and implements
    :meth:`predict`. Register it with :func:`register` to make it available by name.

    Attributes
    ----------
    name : str
        Registry name.
    needs_truth : bool
        Whether the predictor reads the simulation truth (a real screen cannot run it).
    """

    name: str = "predictor"
    needs_truth: bool = False
    _spec: dict = {}

    def params(self) -> dict:
        """The constructor parameters and their values."""
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self"}

    @property
    def label(self) -> str:
        """Display name: the registry name with non-default parameters, e.g. ``ladder(0.25)``."""
        sig = inspect.signature(type(self).__init__)
        parts = []
        for k, prm in sig.parameters.items():
            if k == "self":
                continue
            v = getattr(self, k)
            if prm.default is inspect.Parameter.empty:
                parts.append(repr(v))
            elif v != prm.default:
                parts.append(f"{k}={v!r}")
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    def validate(self) -> None:
        """Check the parameters (ValueError/TypeError naming the parameter)."""
        check_params(self.params(), self._spec)

    def predict(self, ctx):  # pragma: no cover - interface
        """Return a DataFrame (test perturbations x genes) or a :class:`Prediction`.

        Parameters
        ----------
        ctx : Context
            Observed profiles, truth and random streams (see ``simpert.predict.Context``).
        """
        raise NotImplementedError

    def cells(self, ctx, prediction):
        """Predicted cells for ``prediction`` (AnnData or None); by default synthesised.

        See :func:`simpert.predict.synthesize_cells` for the construction.
        """
        from ._cells import synthesize_cells

        return synthesize_cells(ctx, prediction, rng=ctx.rng("cells:" + prediction.name))

    def __repr__(self) -> str:
        return f"<Predictor {self.label}>"


def register(cls: type) -> type:
    """Class decorator: add a :class:`Predictor` subclass to the registry under ``cls.name``.

    Parameters
    ----------
    cls : type
        A subclass of :class:`Predictor` with a ``name``.

    Returns
    -------
    type
        ``cls``, so that ``register`` works as a decorator.
    """
    if not (isinstance(cls, type) and issubclass(cls, Predictor)):
        raise TypeError(f"parameter 'cls' must be a Predictor subclass; got {cls!r}")
    _REGISTRY[cls.name] = cls
    return cls


def list_predictors() -> pd.DataFrame:
    """The registered predictors.

    Returns
    -------
    DataFrame
        One row per predictor: ``name``, ``parameters`` (signature), ``needs_truth`` and
        ``description`` (first paragraph of its docstring).
    """
    rows = []
    for name, cls in _REGISTRY.items():
        sig = inspect.signature(cls.__init__)
        params = ", ".join(str(p) for k, p in sig.parameters.items() if k != "self")
        doc = inspect.getdoc(cls) or ""
        rows.append({"name": name, "parameters": params, "needs_truth": cls.needs_truth,
                     "description": " ".join(doc.split("\n\n")[0].split())})
    return pd.DataFrame(rows, columns=["name", "parameters", "needs_truth", "description"])


def _parse(spec: str):
    text = spec.strip()
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise ValueError(f"parameter 'predictors' must hold names like 'mean' or 'ladder(0.25)'; got {spec!r}") from None
    if isinstance(node, ast.Name):
        return node.id, (), {}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        try:
            args = tuple(ast.literal_eval(a) for a in node.args)
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except ValueError:
            raise ValueError(f"parameter 'predictors' must use literal arguments; got {spec!r}") from None
        return node.func.id, args, kwargs
    raise ValueError(f"parameter 'predictors' must hold names like 'mean' or 'ladder(0.25)'; got {spec!r}")


def get_predictor(spec) -> Predictor:
    """A validated :class:`Predictor` from a name, a parametrised name or an object.

    Parameters
    ----------
    spec : str or Predictor
        ``"mean"``, ``"ladder(0.25)"``, ``"network_ridge(n_regulators=3)"`` or an instance.

    Returns
    -------
    Predictor
    """
    if isinstance(spec, Predictor):
        spec.validate()
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"parameter 'predictors' must hold predictor names or Predictor objects; got {type(spec).__name__}")
    name, args, kwargs = _parse(spec)
    if name not in _REGISTRY:
        raise ValueError(f"parameter 'predictors' must hold registered names ({', '.join(_REGISTRY)}); got {spec!r}")
    try:
        obj = _REGISTRY[name](*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"parameter 'predictors' entry {spec!r} does not match {name}{inspect.signature(_REGISTRY[name].__init__)}: {err}") from None
    obj.validate()
    return obj


def resolve(predictors) -> list[Predictor]:
    """Turn a name, an object or a list of them into validated predictors with unique labels."""
    if isinstance(predictors, (str, Predictor)):
        predictors = [predictors]
    try:
        items = list(predictors)
    except TypeError:
        raise TypeError(f"parameter 'predictors' must be a name, a Predictor or a list of them; got {type(predictors).__name__}") from None
    if not items:
        raise ValueError("parameter 'predictors' must name at least one predictor; got an empty list")
    out = [get_predictor(p) for p in items]
    labels = [p.label for p in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ValueError(f"parameter 'predictors' must not repeat a predictor; got {dup} more than once")
    return out
