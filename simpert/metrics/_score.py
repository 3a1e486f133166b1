"""``score``: every predictor x metric x test perturbation, as one tidy table."""

from __future__ import annotations

import dataclasses
import importlib
import warnings
from typing import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._profiles import DEFAULT_TARGET_SUM, counts_matrix, expression, group_profiles, representation
from .._validation import Instance, Interval, OneOf, check
from ..predict._types import Prediction, Predictions, Split
from ._de_metrics import de_table
from ._input import DEFAULT_OPTIONS, CellSet, MetricInput
from ._registry import Metric, get
from ._weighted import mejia_weights, t_statistics

__all__ = ["score", "build_input", "resolve_metrics", "target_indices", "metric_values"]

_TARGETS = ("include", "exclude", "pairwise", "reveal")
_REFS = ("control", "centroid", "centroid_all")
_WEIGHTS = ("train", "all")


def resolve_metrics(metrics) -> list[Metric]:
    """Turn names, :class:`Metric` objects and callables into a list of Metrics."""
    if metrics is None:
        raise ValueError("parameter 'metrics' must name at least one metric; got None")
    if isinstance(metrics, (str, Metric)) or callable(metrics):
        metrics = [metrics]
    try:
        metrics = list(metrics)
    except TypeError:
        raise TypeError("parameter 'metrics' must be a metric name, Metric, callable or a list of them; "
                        f"got {type(metrics).__name__}") from None
    if not metrics:
        raise ValueError("parameter 'metrics' must name at least one metric; got an empty list")
    out = []
    for m in metrics:
        if isinstance(m, Metric):
            out.append(m)
        elif isinstance(m, str):
            out.append(get(m))
        elif callable(m):
            name = getattr(m, "__name__", None) or type(m).__name__
            out.append(Metric(name, m, None, None, frozenset({"profiles"}), "user metric", "user"))
        else:
            raise TypeError(
                f"parameter 'metrics' must hold metric names, Metric objects or callables; got {type(m).__name__}"
            )
    names = [m.name for m in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"parameter 'metrics' must not repeat a metric; got {dup} more than once")
    return out


def target_indices(adata, perturbations, genes) -> np.ndarray:
    """Column index of each perturbation's target gene (-1 when unknown).

    Looks in ``adata.uns["simpert"]["truth"]["targets"]``, then ``adata.obs["target"]``,
    then for a gene named like the perturbation (cell-eval's convention).
    """
    gidx = pd.Index([str(g) for g in genes])
    found: dict[str, str] = {}
    truth = adata.uns.get("simpert", {}).get("truth", {}) if hasattr(adata, "uns") else {}
    if "targets" in truth and "perturbations" in truth:
        found.update({str(p): str(t) for p, t in zip(np.asarray(truth["perturbations"]), np.asarray(truth["targets"]))})
    if "target" in adata.obs and "perturbation" in adata.obs:
        sub = adata.obs[["perturbation", "target"]].astype(str).drop_duplicates("perturbation")
        for p, t in zip(sub["perturbation"], sub["target"]):
            found.setdefault(p, t)
    names = [found.get(str(p), str(p)) for p in perturbations]
    return gidx.get_indexer(names).astype(np.int64)


def _as_predictions(preds) -> Predictions:
    if isinstance(preds, Predictions):
        return preds
    if isinstance(preds, Prediction):
        return Predictions([preds])
    if isinstance(preds, (Mapping, list, tuple)):
        return Predictions(preds)
    raise TypeError(
        f"parameter 'preds' must be a Predictions mapping, a Prediction or a list of them; got {type(preds).__name__}"
    )


def _vector(name, value, G):
    arr = np.asarray(value, dtype=float)
    if arr.shape != (G,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"parameter {name!r} must be a finite vector of length {G} (one value per gene); got array of shape {arr.shape}")
    return arr


class _Expression:
    """One AnnData's expression in the profile representation, normalised once.

    ``score`` needs the observed expression up to three times (profiles, cells, gene
    weights); this holds the normalised matrix so that the counts are normalised once.
    """

    def __init__(self, adata, target_sum):
        self.adata = adata
        self.X = expression(adata, target_sum=median_total(adata) if target_sum == "median" else target_sum)

    def profiles(self, by="perturbation") -> pd.DataFrame:
        """``group_profiles(adata, by)`` computed from the stored matrix (same arithmetic)."""
        codes = pd.Categorical(self.adata.obs[by]).remove_unused_categories()
        n = self.adata.n_obs
        ind = sp.csr_matrix((np.ones(n), (codes.codes, np.arange(n))), shape=(len(codes.categories), n))
        sizes = np.asarray(ind.sum(axis=1)).ravel()
        sums = ind @ self.X
        sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
        return pd.DataFrame(sums / sizes[:, None], index=pd.Index(codes.categories, name=by),
                            columns=self.adata.var_names.copy())


def median_total(adata) -> float:
    """Median of the positive cell totals of ``adata``'s counts (scanpy's ``normalize_total``).

    cell-eval normalises each AnnData to its own median total (``_evaluator._convert_to_normlog``
    calls ``scanpy.pp.normalize_total`` without ``target_sum``); scanpy takes the median
    over the cells whose total is positive. 1.0 when no cell has counts.
    """
    x = counts_matrix(adata)
    tot = np.asarray(x.sum(axis=1)).ravel().astype(np.float64)
    tot = tot[tot > 0]
    return float(np.median(tot)) if tot.size else 1.0


def _gene_columns(adata, genes, name):
    """Column of each of ``genes`` in ``adata`` (None when already in that order)."""
    vn = pd.Index([str(g) for g in adata.var_names])
    want = pd.Index(genes)
    if vn.equals(want):
        return None
    if len(vn) != len(want) or not vn.is_unique or set(vn) != set(want):
        raise ValueError(f"parameter {name!r} must hold cells with the genes of adata (any order); got "
                         f"{len(vn)} genes, {len(set(vn) & set(want))} of adata's {len(want)}")
    return vn.get_indexer(want)


def _cells(adata, perturbations, control, target_sum, X=None, genes=None, train=None, name="adata"):
    """:class:`CellSet` of ``adata``: log-normalised cells, counts, group codes, training mask.

    Genes are put in the order ``genes`` (an AnnData of predicted cells may list them in
    another order); ``target_sum="median"`` normalises to ``adata``'s own median total.
    """
    cols = None if genes is None else _gene_columns(adata, genes, name)
    if X is None:
        X = expression(adata, target_sum=median_total(adata) if target_sum == "median" else target_sum)
    counts = counts_matrix(adata) if representation(adata) == "lognorm" else None
    if cols is not None:
        X = X[:, cols]
        counts = None if counts is None else counts[:, cols]
    labels = adata.obs["perturbation"].astype(str).to_numpy()
    code = pd.Index([str(p) for p in perturbations]).get_indexer(labels)
    code = np.where(labels == control, -1, np.where(code >= 0, code, -2))
    is_train = None if train is None else (labels == control) | np.isin(labels, [str(t) for t in train])
    return CellSet(X=X, group=code, counts=counts, train=is_train)


def _with_controls(pc: CellSet, real_cells: CellSet) -> CellSet:
    """Predicted cells without controls, completed by the observed control cells.

    Both sets are already in the genes of the screen; counts are kept when both sides
    have them.
    """
    ctrl = np.flatnonzero(real_cells.group == -1)
    X = sp.vstack([sp.csr_matrix(pc.X), sp.csr_matrix(real_cells.X)[ctrl]]).tocsr()
    counts = None
    if pc.counts is not None and real_cells.counts is not None:
        counts = sp.vstack([sp.csr_matrix(pc.counts), sp.csr_matrix(real_cells.counts)[ctrl]]).tocsr()
    return CellSet(X=X, group=np.concatenate([pc.group, np.full(ctrl.size, -1)]), counts=counts)


def _weights(kind, adata, split, test, genes, target_sum, X=None):
    control = split.control
    labels = adata.obs["perturbation"].astype(str).to_numpy()
    if kind == "all":
        keep = labels != control
        groups = list(test)
    else:
        train = set(map(str, split.train))
        keep = np.isin(labels, list(train))
        groups = [p for p in split.train if str(p) in set(labels[keep])]
        if len(groups) < 2:
            raise ValueError("parameter 'weights' = 'train' needs at least 2 training perturbations with cells")
    rows = np.flatnonzero(keep)
    X = expression(adata, rows, target_sum=target_sum) if X is None else X[rows]
    t = t_statistics(X, labels[keep], groups)
    w = mejia_weights(t)
    return w if kind == "all" else w.mean(axis=0)


def _weight_kind(weights, metric: Metric) -> str:
    """Weight source of ``metric``: the ``weights`` option, else the metric's own convention."""
    if weights is None:
        return metric.weights or "all"
    return weights if isinstance(weights, str) else "external"


def _de_for(de, key, adata_like, control, perturbations, genes, what, target_sum=DEFAULT_TARGET_SUM):
    if de is not None:
        if not isinstance(de, Mapping):
            raise TypeError(f"parameter 'de' must be a mapping of tables ('real' and one per predictor); got {type(de).__name__}")
        if key not in de:
            raise ValueError(f"parameter 'de' must have a table for {key!r}; got keys {sorted(de)}")
        return de_table(de[key], perturbations, genes)
    try:
        wilcoxon = importlib.import_module("simpert.de").wilcoxon
    except (ImportError, AttributeError):
        raise ValueError(
            "DE-based metrics need DE tables: pass de={'real': table, <predictor>: table} "
            "(simpert.de.wilcoxon is not available to compute them)"
        ) from None
    if adata_like is None:
        raise ValueError(f"DE-based metrics need predicted cells; prediction {what!r} has no .cells")
    # counts are normalised to target_sum (the profiles' convention; "median": the AnnData's
    # own median total, as cell-eval's _evaluator._convert_to_normlog does with
    # scanpy.pp.normalize_total) and log1p-transformed; log-normalised input (values with
    # decimals) is used as it is, as cell-eval does
    res = wilcoxon(adata_like, control=control, normalize="auto",
                   target_sum=None if target_sum == "median" else target_sum)
    table = getattr(res, "table", res)
    return de_table(table, perturbations, genes)


def build_input(pred: Prediction, adata, split: Split, *, profiles: pd.DataFrame | None = None,
                target_sum: float = DEFAULT_TARGET_SUM, options=None, observed: dict | None = None) -> MetricInput:
    """The profile part of a :class:`MetricInput` for one prediction (target "include").

    Parameters
    ----------
    pred : Prediction
    adata : AnnData
        The screen (cells or pseudobulk samples, counts).
    split : Split
    profiles : DataFrame, optional
        Precomputed ``group_profiles(adata)``.
    target_sum : float, default 1e4
    options : mapping, optional
    observed : dict, optional
        Observed arrays already extracted from ``profiles`` for this split (``score``
        shares them between predictions); computed when None.

    Returns
    -------
    MetricInput
    """
    prof = group_profiles(adata, "perturbation", target_sum=target_sum) if profiles is None else profiles
    prof.index = prof.index.astype(str)
    genes = tuple(map(str, adata.var_names))
    test = tuple(map(str, split.test))
    missing = [p for p in test if p not in prof.index]
    if missing:
        raise ValueError(f"parameter 'split' must name perturbations present in adata; got unknown test perturbations {missing[:5]}")
    if split.control not in prof.index:
        raise ValueError(f"parameter 'split' must name a control label present in adata.obs['perturbation']; got {split.control!r}")
    cols = pd.Index(map(str, pred.profiles.columns))
    if len(cols) != len(genes) or set(cols) != set(genes):
        raise ValueError(
            f"parameter 'preds' must have the genes of adata as profile columns; prediction {pred.name!r} has "
            f"{len(cols)} genes, {len(set(cols) ^ set(genes))} differing from adata's {len(genes)}"
        )
    rows = pd.Index(map(str, pred.profiles.index))
    if not rows.is_unique:
        dup = sorted(set(rows[rows.duplicated()]))
        raise ValueError(f"parameter 'preds' must have one profile row per perturbation; prediction "
                         f"{pred.name!r} repeats {dup[:5]}")
    if not cols.is_unique:
        dup = sorted(set(cols[cols.duplicated()]))
        raise ValueError(f"parameter 'preds' must have one column per gene; prediction {pred.name!r} "
                         f"repeats {dup[:5]}")
    lacking = [p for p in test if p not in rows]
    if lacking:
        raise ValueError(f"parameter 'preds' must predict every test perturbation; prediction {pred.name!r} lacks {lacking[:5]}")
    pm = _take(pred.profiles.to_numpy(dtype=float), rows, cols, test, genes)
    pc = _take(pred.control.to_numpy(dtype=float)[None, :], pd.Index(["control"]), cols, ("control",), genes)[0]
    for what, arr in (("profiles", pm), ("control profile", pc)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"parameter 'preds' must hold finite values; prediction {pred.name!r} has "
                             f"{int(bad.sum())} NaN or infinite value(s) in its {what}")
    opts = dict(DEFAULT_OPTIONS)
    opts.update(options or {})
    obs = _observed(prof, adata, split, test, genes) if observed is None else observed
    return MetricInput(
        pred=pm,
        real=obs["real"],
        pred_control=pc,
        real_control=obs["real_control"],
        perturbations=test,
        genes=genes,
        targets=obs["targets"],
        train=obs["train"],
        train_perturbations=obs["train_perturbations"],
        options=opts,
    )


def _take(values, rows, cols, want_rows, want_cols):
    """``values`` (labelled ``rows`` x ``cols``) reordered to ``want_rows`` x ``want_cols``."""
    ri = rows.get_indexer(list(want_rows)) if rows.is_unique else None
    ci = cols.get_indexer(list(want_cols)) if cols.is_unique else None
    if ri is None or ci is None:  # duplicated labels: label-based selection
        return pd.DataFrame(values, index=rows, columns=cols).loc[list(want_rows), list(want_cols)].to_numpy(dtype=float)
    if not np.array_equal(ri, np.arange(values.shape[0])):
        values = values[ri]
    if not np.array_equal(ci, np.arange(values.shape[1])):
        values = values[:, ci]
    return np.ascontiguousarray(values, dtype=float)


def _observed(prof, adata, split, test, genes) -> dict:
    """Observed arrays shared by every prediction of one score call."""
    train = tuple(p for p in map(str, split.train) if p in prof.index)
    return {
        "real": prof.loc[list(test)].to_numpy(dtype=float),
        "real_control": prof.loc[split.control].to_numpy(dtype=float),
        "targets": target_indices(adata, test, genes),
        "train": prof.loc[list(train)].to_numpy(dtype=float) if train else None,
        "train_perturbations": train,
    }


def _variant(base: MetricInput, target: str, reference, cache: dict, centroid_all=None,
             weights=None, weight_key=None) -> MetricInput:
    key = (target, reference if isinstance(reference, str) or reference is None else "external", weight_key)
    if key in cache:
        return cache[key]
    changes = {"target": target}
    if weight_key is not None:
        changes["weights"] = weights
    if target == "reveal":
        pred = base.pred.copy()
        rows = np.flatnonzero(base.targets >= 0)
        pred[rows, base.targets[rows]] = base.real[rows, base.targets[rows]]
        changes["pred"] = pred
    if reference is None or (isinstance(reference, str) and reference == "control"):
        changes["reference_real"] = base.real_control
        changes["reference_pred"] = base.pred_control
    elif isinstance(reference, str) and reference == "centroid":
        if base.train is None:
            raise ValueError("parameter 'reference' = 'centroid' needs training perturbations in the split; got none")
        mu = base.train.mean(axis=0)
        changes["reference_real"] = mu
        changes["reference_pred"] = mu
    elif isinstance(reference, str) and reference == "centroid_all":
        if centroid_all is None:
            raise ValueError("parameter 'reference' = 'centroid_all' needs perturbed cells in adata; got none")
        changes["reference_real"] = centroid_all
        changes["reference_pred"] = centroid_all
    else:
        changes["reference_real"] = reference
        changes["reference_pred"] = reference
    out = dataclasses.replace(base, **changes)
    cache[key] = out
    return out


def score(preds, adata, split, *, metrics, target: str | None = None, reference=None,
          weights=None, de=None, target_sum=DEFAULT_TARGET_SUM,
          options: Mapping | None = None) -> pd.DataFrame:
    """Score predictions with any set of metrics.

    Parameters
    ----------
    preds : Predictions, Prediction or list of Prediction
        Predicted profiles of the test perturbations (and optionally predicted cells).
    adata : AnnData
        The screen: counts of cells or pseudobulk samples with ``obs['perturbation']``.
        Observed profiles are ``simpert._profiles.group_profiles(adata)``; the observed
        control profile is the mean over control cells.
    split : Split
        Training and test perturbations; scores are reported for ``split.test``.
    metrics : str, Metric, callable or a sequence of them
        Registered names (see :func:`list_metrics`), Metric objects, or callables
        ``fn(inp: MetricInput) -> ndarray (P,)``.
    target : {"include", "exclude", "pairwise", "reveal"} or None, default None
        Target-gene handling for every metric where it applies: kept, dropped from the
        comparisons of its own perturbation (one-sided, cell-eval), dropped from every
        comparison it takes part in (pairwise, Kernfeld), or revealed (the prediction's
        target gene set to its observed value, PEREGGRN). None: each metric's native
        handling (``Metric.target``).
    reference : {"control", "centroid", "centroid_all"}, ndarray of shape (G,), or None, default None
        Reference point of deltas: control profiles (each side its own control), the
        perturbed centroid of the training perturbations (Systema), the centroid of every
        perturbation's profile, test ones included (Mejia et al.), or an external vector.
        None: each metric's native reference (``Metric.reference``).
        ``systematic_variation`` describes the data and always uses the training
        centroid, whatever this option says.
    weights : {"train", "all"}, ndarray or None, default None
        Source of gene weights for weighted metrics (see ``simpert.metrics._weighted``):
        "all" gives each test perturbation its own weights from its cells against every
        other perturbed cell (Mejia et al.; the held-out truth enters the weights),
        "train" one vector from the training perturbations only (no leakage), or external
        weights of shape (G,) or (P, G). None: each metric's own convention
        (``Metric.weights``; "all" for ``wmse`` and ``weighted_r2_delta``).
    de : mapping or None
        DE tables for DE-based metrics: ``{"real": table, <predictor name>: table}``,
        tidy tables in simpert's or cell-eval's schema. None: computed with
        ``simpert.de.wilcoxon`` from ``adata`` and each prediction's ``.cells``, counts
        normalised to ``target_sum`` (with ``"median"``, each AnnData to its own median
        total, as cell-eval does) and log1p-transformed.
    target_sum : float or "median", default 1e4
        Normalisation total of the log-normalised profiles and cells. "median": each
        AnnData (the screen, each prediction's cells) is normalised to its own median
        cell total, as cell-eval does (``scanpy.pp.normalize_total`` without a total).
    options : mapping, optional
        Metric options overriding ``DEFAULT_OPTIONS`` (``fdr``, ``top_n``, ``n_de``, ...).

    Returns
    -------
    DataFrame
        Columns ``predictor``, ``perturbation``, ``metric``, ``value``: one row per
        predictor x metric x test perturbation. A metric that raises, or returns anything
        but one finite-or-NaN number per test perturbation, is left out and recorded in
        ``table.attrs["errors"]`` (predictor, metric, message) with a warning; the other
        metrics' values are kept. ``table.attrs["errors"]`` is a list of dicts (empty when
        every metric succeeded).

    Raises
    ------
    ValueError
        On bad input, or when every metric failed for every prediction (the message lists
        the failures).
    """
    preds = _as_predictions(preds)
    if len(preds) == 0:
        raise ValueError("parameter 'preds' must hold at least one prediction; got none")
    if not hasattr(adata, "obs") or "perturbation" not in adata.obs:
        raise ValueError("parameter 'adata' must be an AnnData with obs['perturbation']; got none")
    check("split", split, Instance((Split,)))
    check("target", target, OneOf(_TARGETS + (None,)))
    if not (isinstance(target_sum, str) and target_sum == "median"):
        if isinstance(target_sum, str) or isinstance(target_sum, bool):
            raise ValueError(f"parameter 'target_sum' must be a positive number or 'median'; got {target_sum!r}")
        check("target_sum", target_sum, Interval(0, None, closed="neither"))
    ms = resolve_metrics(metrics)
    G = adata.n_vars
    if reference is not None and not isinstance(reference, str):
        reference = _vector("reference", reference, G)
    elif isinstance(reference, str):
        check("reference", reference, OneOf(_REFS))
    if isinstance(weights, str):
        check("weights", weights, OneOf(_WEIGHTS))
    elif weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.ndim not in (1, 2) or w.shape[-1] != G or (w.ndim == 2 and w.shape[0] != len(split.test)) \
                or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(
                f"parameter 'weights' must be None, 'train', 'all' or a non-negative finite array of shape "
                f"({G},) or ({len(split.test)}, {G}); got array of shape {w.shape}"
            )
        weights = w
    if options is not None:
        unknown = sorted(set(options) - set(DEFAULT_OPTIONS) - {"train_labels"})
        if unknown:
            raise ValueError(f"parameter 'options' must use known option names {sorted(DEFAULT_OPTIONS)}; got {unknown}")

    needs = set().union(*(m.needs for m in ms))
    test = tuple(map(str, split.test))
    genes = tuple(map(str, adata.var_names))
    real_expr = _Expression(adata, target_sum)  # the observed counts are normalised once
    profiles = real_expr.profiles("perturbation")
    w_res: dict = {}  # weight source -> weights
    for m in ms:
        if m.uses_weights:
            kind = _weight_kind(weights, m)
            if kind not in w_res:
                w_res[kind] = weights if kind == "external" else _weights(kind, adata, split, test, genes,
                                                                           target_sum, X=real_expr.X)
    real_cells = _cells(adata, test, split.control, target_sum, X=real_expr.X, train=split.train) \
        if needs & {"cells", "real_cells"} else None
    del real_expr
    others = [str(p) for p in profiles.index if str(p) != str(split.control)]
    centroid_all = profiles.loc[others].to_numpy(dtype=float).mean(axis=0) if others else None
    call_cache: dict = {}  # quantities of the observed data shared by every prediction
    de_real = _de_for(de, "real", adata, split.control, test, genes, "real", target_sum) if "de" in needs else None

    profiles.index = profiles.index.astype(str)
    observed = None
    frames, failures = [], []
    for name, pred in preds.items():
        if observed is None:
            observed = _observed(profiles, adata, split, test, genes) if split.control in profiles.index \
                and all(p in profiles.index for p in test) else None
        base = build_input(pred, adata, split, profiles=profiles, target_sum=target_sum, options=options,
                           observed=observed)
        extra = {"de_real": de_real, "real_cells": real_cells, "cache": call_cache}
        if "de" in needs:
            extra["de_pred"] = _de_for(de, name, pred.cells, split.control, test, genes, name, target_sum)
        if "cells" in needs:
            if pred.cells is None:
                raise ValueError(f"metrics that need cells require predicted cells; prediction {name!r} has no .cells")
            pc = _cells(pred.cells, test, split.control, target_sum, genes=genes, name="preds")
            vals = pc.X.data if sp.issparse(pc.X) else np.asarray(pc.X)
            if not np.all(np.isfinite(vals)):
                raise ValueError(f"parameter 'preds' must carry finite cells; prediction {name!r} has "
                                 f"{int(np.sum(~np.isfinite(vals)))} NaN or infinite value(s) in its cells")
            if not np.any(pc.group == -1):  # no predicted controls: use the observed ones
                pc = _with_controls(pc, real_cells)
            extra["pred_cells"] = pc
        base = dataclasses.replace(base, **extra)
        cache: dict = {}
        for m in ms:
            try:
                wkey = _weight_kind(weights, m) if m.uses_weights else None
                inp = _variant(base, target or m.target, reference if reference is not None else m.reference, cache,
                               centroid_all=centroid_all, weights=w_res.get(wkey), weight_key=wkey)
                vals = metric_values(m, m.fn(inp), len(test))
            except Exception as err:  # noqa: BLE001 - recorded per metric, the rest is kept
                failures.append({"predictor": name, "metric": m.name, "message": f"{type(err).__name__}: {err}"})
                continue
            frames.append(pd.DataFrame({"predictor": name, "perturbation": list(test), "metric": m.name, "value": vals}))
    text = "; ".join(f"{f['metric']} on {f['predictor']}: {f['message']}" for f in failures)
    if not frames:
        raise ValueError("every metric failed: " + text[:4000])
    table = pd.concat(frames, ignore_index=True)
    table.attrs["errors"] = failures
    if failures:
        warnings.warn("metrics failed and were left out (see table.attrs['errors']): " + text[:2000],
                      UserWarning, stacklevel=2)
    return table


def metric_values(metric: Metric, out, n: int) -> np.ndarray:
    """Check a metric's output: one real number (or NaN) per test perturbation.

    Parameters
    ----------
    metric : Metric
    out : object
        What ``metric.fn`` returned.
    n : int
        Number of test perturbations.

    Returns
    -------
    ndarray of float64, shape (n,)
        A per-set metric (``metric.per_set``) may return one value, repeated here.

    Raises
    ------
    ValueError
        When the output is not numeric, or not of length ``n``.
    """
    arr = np.asarray(out)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"metric {metric.name!r} must return numbers (one per test perturbation); got "
                         f"{type(out).__name__} of dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"metric {metric.name!r} must return real numbers; got complex values")
    vals = arr.astype(np.float64).ravel()
    if vals.shape[0] == 1 and n != 1 and metric.per_set:
        vals = np.repeat(vals, n)
    if vals.shape[0] != n:
        raise ValueError(f"metric {metric.name!r} must return one value per test perturbation ({n}); got "
                         f"{'a scalar' if arr.ndim == 0 else f'{vals.shape[0]} values'}")
    if np.any(np.isinf(vals)):
        raise ValueError(f"metric {metric.name!r} must return finite values or NaN; got "
                         f"{int(np.isinf(vals).sum())} infinite value(s)")
    return vals
