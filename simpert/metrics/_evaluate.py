"""``evaluate`` and ``compare``: score a model's own predictions of a real screen.

The front door for predictions made outside simpert: two AnnData (predicted and observed
cells, or one profile row per perturbation), aligned by perturbation label and gene name,
scored with any registered metric or profile, anchored as cell-eval2 anchors its score
(the mean-response baseline ``b`` and the split-half replicate ``r`` of the real data,
``s = (u - b) / (r - b)``), with bootstrap intervals for every aggregate and paired
comparisons of two models.

Both fronts, :func:`evaluate` here and :func:`simpert.metrics.score` for simulated
predictors, run the same metric code on the same :class:`MetricInput`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.stats as st

from .._random import as_seed_sequence
from .._validation import Instance, Integer, Interval, OneOf, check, fail
from ..predict._types import Prediction, Predictions, Split
from ._registry import registry
from ._score import resolve_metrics, score

__all__ = ["evaluate", "compare", "detect_input_type", "EvaluationResult", "ComparisonResult",
           "EVALUATION_PROFILES", "profile_metrics"]

_INPUT_TYPES = ("counts", "lognorm")
#: Metric lists of the named profiles :func:`evaluate` accepts (besides ``vcc2026``).
EVALUATION_PROFILES = ("cell-eval-full", "vcc", "vcc2026", "pereggrn", "systema", "all")
_VCC = ("overlap_at_N", "discrimination_score_l1", "mae")  # the 2025 challenge's three (cell-eval "vcc")


def profile_metrics(name: str) -> list[str]:
    """The metric names of an evaluation profile.

    Parameters
    ----------
    name : str
        One of :data:`EVALUATION_PROFILES`: ``"cell-eval-full"`` (every cell-eval metric),
        ``"vcc"`` (overlap_at_N, discrimination_score_l1, mae: the 2025 challenge),
        ``"vcc2026"`` (cell-eval2's six), ``"pereggrn"``, ``"systema"`` or ``"all"``.

    Returns
    -------
    list of str
    """
    check("profile", name, OneOf(EVALUATION_PROFILES))
    if name == "vcc":
        return list(_VCC)
    if name == "all":
        return sorted(registry)
    source = {"cell-eval-full": "cell-eval", "vcc2026": "cell-eval2", "pereggrn": "PEREGGRN",
              "systema": "Systema"}[name]
    return [k for k, m in registry.items() if m.source == source]


# --------------------------------------------------------------------------- input handling


def detect_input_type(X, *, name: str = "X", prediction: bool = False) -> str:
    """Whether a matrix holds counts or log-normalised values (cell-eval's rule, made strict).

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix
    name : str, default "X"
        Name used in error messages.
    prediction : bool, default False
        A model's output: log-normalised values may then be negative (a regression model's
        prediction need not respect the data's range); counts may not.

    Returns
    -------
    str
        ``"counts"`` when every value is a non-negative integer; ``"lognorm"`` when values
        have decimals and lie in ``[0, 20]`` (``log1p`` of a normalised count stays below
        about 14 even at a million counts per cell).

    Raises
    ------
    ValueError
        Non-finite values, negative counts (or negative values in observed data), or
        decimals above 20 (normalised but not log-transformed, or some other scale).
    """
    data = X.data if sp.issparse(X) else np.asarray(X)
    if data.dtype.kind not in "biuf":
        fail(name, "a numeric matrix", f"dtype {data.dtype}", exc=TypeError)
    if data.size == 0:
        return "counts"
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)):
            fail(name, "finite values (counts or log1p-normalised expression)",
                 f"{int(np.sum(~np.isfinite(data)))} NaN or infinite values")
    lo = float(data.min())
    integral = data.dtype.kind in "biu" or bool(np.all(data == np.round(data)))
    if lo < 0 and (integral or not prediction):
        fail(name, "non-negative values (counts or log1p-normalised expression)", f"minimum {lo:g}")
    if integral:
        return "counts"
    hi = float(data.max())
    if hi > 20:
        fail(name, "counts (integers) or log1p-normalised values (decimals up to about 14); values "
                   "with decimals above 20 look normalised but not log-transformed",
             f"maximum {hi:g}")
    return "lognorm"


def _read(x, name):
    if isinstance(x, (str, Path)):
        import anndata as ad

        path = Path(x)
        if not path.is_file():
            fail(name, "an AnnData or the path of an .h5ad file", str(x), exc=FileNotFoundError)
        return ad.read_h5ad(path)
    if not hasattr(x, "obs") or not hasattr(x, "var_names"):
        fail(name, "an AnnData or the path of an .h5ad file", type(x).__name__, exc=TypeError)
    return x


@dataclass
class _Side:
    """One AnnData reduced to what scoring needs: labels, genes, expression, kind."""

    X: object  # float64 CSR or ndarray, log-normalised (or raw when the input was lognorm)
    labels: np.ndarray  # str per row
    genes: pd.Index
    kind: str
    is_cells: bool
    targets: dict


def _side(adata, name, key, control, input_type, target_key, layer) -> _Side:
    if key not in adata.obs.columns:
        fail("perturbation_key", f"a column of {name}.obs ({', '.join(map(str, adata.obs.columns))})", key)
    lab = adata.obs[key]
    if lab.isna().any():
        fail(key, f"a label for every row of {name}", f"{int(lab.isna().sum())} missing labels")
    labels = lab.astype(str).to_numpy()
    if layer is not None and layer not in adata.layers:
        fail("layer", f"a layer of {name} ({', '.join(adata.layers.keys()) or 'none'})", layer)
    X = adata.layers[layer] if layer is not None else adata.X
    if X is None:
        fail(name, "an AnnData with a matrix in .X", None)
    genes = pd.Index(np.asarray(adata.var_names, dtype=str))
    if not genes.is_unique:
        fail(name, "unique gene names", f"{int(genes.duplicated().sum())} repeated names")
    found = detect_input_type(X, name=name, prediction=name == "pred")
    if input_type is not None and input_type != found:
        fail("input_type", f"{found!r} for {name} (its values are "
                           f"{'integers' if found == 'counts' else 'decimals'})", input_type)
    targets = {}
    if target_key is not None:
        if target_key not in adata.obs.columns:
            fail("target_key", f"a column of {name}.obs", target_key)
        t = adata.obs[[key, target_key]].astype(str).drop_duplicates(key)
        targets = dict(zip(t[key], t[target_key]))
    is_cells = bool(pd.Series(labels).duplicated().any())
    return _Side(X=X, labels=labels, genes=genes, kind=found, is_cells=is_cells, targets=targets)


def _expr(side: _Side, genes: pd.Index, target_sum):
    """Rows in the common gene order, log-normalised (counts) or as given (lognorm)."""
    X = side.X
    idx = side.genes.get_indexer(genes)
    if sp.issparse(X):
        X = sp.csr_matrix(X)[:, idx]
    else:
        X = np.asarray(X)[:, idx]
    if side.kind == "counts":
        ts = target_sum
        if ts == "median":
            tot = np.asarray(side.X.sum(axis=1, dtype=np.float64)).ravel()
            ts = float(np.median(tot[tot > 0])) if np.any(tot > 0) else 1.0
        # normalise on the full row totals (all genes), then keep the common genes
        totals = np.asarray(side.X.sum(axis=1, dtype=np.float64)).ravel()
        scale = np.divide(ts, totals, out=np.zeros_like(totals, dtype=float), where=totals > 0)
        if sp.issparse(X):
            X = sp.csr_matrix(X, dtype=np.float64, copy=True)
            X.data *= np.repeat(scale, np.diff(X.indptr))
            np.log1p(X.data, out=X.data)
        else:
            X = np.log1p(np.asarray(X, dtype=np.float64) * scale[:, None])
    else:
        X = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    return X


def _adata(X, labels, genes, control, targets):
    import anndata as ad

    cats = [control] + sorted(set(labels) - {control})
    obs = pd.DataFrame({"perturbation": pd.Categorical(labels, categories=cats)},
                       index=pd.Index([f"r{i}" for i in range(len(labels))]))
    obs["target"] = [targets.get(x, x) if x != control else "" for x in labels]
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes))


def _profiles(X, labels, keep):
    """Mean row of ``X`` per label in ``keep`` (one sparse product for all labels)."""
    keep = list(keep)
    pos = {lab: i for i, lab in enumerate(keep)}
    code = np.fromiter((pos.get(x, -1) for x in labels), dtype=np.int64, count=len(labels))
    rows = np.flatnonzero(code >= 0)
    ind = sp.csr_matrix((np.ones(rows.size), (code[rows], rows)), shape=(len(keep), len(labels)))
    sums = ind @ X
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    n = np.asarray(ind.sum(axis=1)).ravel()
    means = sums / np.maximum(n, 1)[:, None]
    return {lab: means[i] for i, lab in enumerate(keep) if n[i] > 0}


# --------------------------------------------------------------------------- results


@dataclass
class EvaluationSummary:
    """What :meth:`EvaluationResult.summary` returns: a table and a few lines of context."""

    table: pd.DataFrame
    notes: list

    def __str__(self) -> str:
        with pd.option_context("display.width", 140, "display.max_columns", 20):
            return "\n".join(["simpert evaluation", str(self.table), *self.notes])

    def _repr_html_(self) -> str:
        return self.table.to_html() + "".join(f"<p>{n}</p>" for n in self.notes)


@dataclass
class EvaluationResult:
    """Scores of one prediction against a real screen.

    Attributes
    ----------
    per_perturbation : DataFrame
        Tidy: ``model`` ("prediction", "baseline", "replicate"), ``perturbation``,
        ``metric``, ``value``.
    aggregate : DataFrame
        One row per metric: ``value`` (u, the mean over perturbations), ``ci_low``,
        ``ci_high`` (BCa bootstrap interval), ``n`` (perturbations with a value),
        ``baseline`` (b), ``replicate`` (r), ``score`` ((u - b) / (r - b)), ``score_ci_low``,
        ``score_ci_high``, ``higher_is_better``, ``ci_method``, ``score_note`` (why a score is
        undefined: e.g. a replicate anchor that is not better than the baseline, where
        cell-eval2 too refuses to score).
    errors : list of dict
        Metrics that failed (model, metric, message); the others are kept.
    dropped : dict
        What alignment left out: perturbations only in ``pred`` or only in ``real``, genes
        only on one side.
    settings : dict
        The choices the numbers depend on (input type, profile, bootstrap size, seed, ...).
    """

    per_perturbation: pd.DataFrame
    aggregate: pd.DataFrame
    errors: list = field(default_factory=list)
    dropped: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def summary(self) -> EvaluationSummary:
        """A compact table: value, interval, anchors and score per metric.

        Returns
        -------
        EvaluationSummary
        """
        cols = ["value", "ci_low", "ci_high", "baseline", "replicate", "score", "n"]
        table = self.aggregate[cols].round(4)
        notes = [f"{self.settings.get('n_perturbations')} perturbations; intervals: "
                 f"{self.settings.get('ci_level', 0.95):.0%} bootstrap over "
                 f"{self.settings.get('ci_method', 'perturbations')} ({self.settings.get('n_boot')} resamples)"]
        for k, v in self.dropped.items():
            if v:
                notes.append(f"dropped {k}: {len(v)} ({', '.join(map(str, v[:5]))}{', ...' if len(v) > 5 else ''})")
        for e in self.errors:
            notes.append(f"failed: {e['metric']} on {e['model']}: {e['message']}")
        if "score_note" in self.aggregate:
            for m, note in self.aggregate["score_note"].items():
                if note:
                    notes.append(f"no score for {m}: {note}")
        return EvaluationSummary(table, notes)

    def results_table(self) -> pd.DataFrame:
        """The prediction's values in cell-eval2's ``results.csv`` layout.

        Returns
        -------
        DataFrame
            Columns ``perturbation``, ``metric``, ``value``.
        """
        t = self.per_perturbation
        return t[t["model"] == "prediction"][["perturbation", "metric", "value"]].reset_index(drop=True)

    def agg_table(self) -> pd.DataFrame:
        """Aggregates in cell-eval2's ``agg_results.csv`` layout.

        Returns
        -------
        DataFrame
            Column ``statistic`` (count, null_count, mean, std, min, max, median) and one
            column per metric, sorted by name; statistics over the non-NaN per-perturbation
            values (``count`` and ``null_count`` over all). A metric with one value per set
            has only its ``mean``. (cell-eval2 0.20.0 ``run.aggregate_metrics_wide``.)
        """
        stats = ("count", "null_count", "mean", "std", "min", "max", "median")
        t = self.per_perturbation
        t = t[t["model"] == "prediction"]
        per_set = set(self.settings.get("per_set_metrics", ()))
        cols = {"statistic": list(stats)}
        for m in sorted(self.aggregate.index):
            if m in per_set:
                v = [np.nan] * len(stats)
                v[2] = float(self.aggregate.loc[m, "value"])
                cols[m] = v
                continue
            raw = t.loc[t["metric"] == m, "value"].to_numpy(dtype=float)
            nn = raw[np.isfinite(raw)]
            cols[m] = [float(raw.size), float(np.sum(~np.isfinite(raw))),
                       *(float(f(nn)) if nn.size else np.nan for f in (np.mean,)),
                       float(np.std(nn, ddof=1)) if nn.size > 1 else np.nan,
                       *(float(f(nn)) if nn.size else np.nan for f in (np.min, np.max, np.median))]
        return pd.DataFrame(cols)


# --------------------------------------------------------------------------- the core


def _per_set_names(ms) -> set:
    return {m.name for m in ms if m.per_set or m.name == "expr_mse_unbiased_capped_norm"}


def _boot_index(n: int, n_boot: int, seed_seq) -> np.ndarray:
    g = np.random.default_rng(seed_seq)
    return g.integers(0, n, size=(n_boot, n))


def _ci(values: np.ndarray, idx: np.ndarray, level: float):
    """BCa bootstrap interval of the mean of ``values`` (NaN ignored) over resamples ``idx``.

    Bias-corrected and accelerated percentiles (Efron 1987): the bias correction ``z0`` from
    the share of resampled means below the estimate, the acceleration ``a`` from the
    jackknife means. Per-perturbation values are often skewed (a few perturbations with
    large effects), where plain percentiles undercover.
    """
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 2:
        return np.nan, np.nan, np.full(idx.shape[0], np.nan)
    vv = np.where(ok, v, 0.0)
    num = vv[idx].sum(axis=1)
    den = ok[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = num / den
    x = v[ok]
    theta = float(x.mean())
    fin = means[np.isfinite(means)]
    below = (np.sum(fin < theta) + 0.5 * np.sum(fin == theta)) / max(fin.size, 1)
    z0 = st.norm.ppf(np.clip(below, 1e-6, 1 - 1e-6))
    jack = (x.sum() - x) / (x.size - 1)
    d = jack.mean() - jack
    den_a = 6.0 * np.sum(d ** 2) ** 1.5
    acc = float(np.sum(d ** 3) / den_a) if den_a > 0 else 0.0
    q = (1 - level) / 2
    out = []
    for z in (st.norm.ppf(q), st.norm.ppf(1 - q)):
        adj = st.norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z)))
        out.append(float(np.nanquantile(means, adj)) if np.isfinite(adj) else np.nan)
    return out[0], out[1], means


def _wide(per: pd.DataFrame, model: str, perts) -> pd.DataFrame:
    t = per[per["model"] == model]
    if t.empty:
        return pd.DataFrame(index=list(perts))
    return t.pivot_table(index="perturbation", columns="metric", values="value", aggfunc="first",
                         dropna=False).reindex(list(perts))


def _baseline_rows(real_labels, control, test, rng) -> tuple[np.ndarray, np.ndarray]:
    """Rows and labels of the baseline's cells: each perturbation's as many cells as it has,
    drawn with replacement from every perturbed cell, then the control cells."""
    pert_rows = np.flatnonzero(np.isin(real_labels, list(test)))
    rows, labs = [], []
    for p in test:
        n = int(np.sum(real_labels == p))
        rows.append(rng.choice(pert_rows, size=n, replace=True))
        labs += [p] * n
    ctrl_rows = np.flatnonzero(real_labels == control)
    rows.append(ctrl_rows)
    labs += [control] * ctrl_rows.size
    return np.concatenate(rows), np.asarray(labs)


def _baseline_prediction(real_X, real_labels, control, test, genes, rng) -> Prediction:
    """Mean-response baseline: every perturbation predicted by the mean of the real
    perturbation profiles; cells drawn from all real perturbed cells (as many as each has)."""
    prof = _profiles(real_X, real_labels, list(test) + [control])
    mean = np.mean([prof[p] for p in test], axis=0)
    profiles = pd.DataFrame(np.tile(mean, (len(test), 1)), index=list(test), columns=genes)
    cells = None
    if pd.Series(real_labels).duplicated().any():
        rows, labs = _baseline_rows(real_labels, control, test, rng)
        cells = _adata(real_X[rows], labs, genes, control, {})
    return Prediction(name="baseline", profiles=profiles, control=pd.Series(prof[control], index=genes),
                      cells=cells)


def _halves(labels: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    a, b = [], []
    for lab in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == lab))
        h = rows.size // 2
        if h >= 1:
            a.append(rows[:h])
            b.append(rows[h:2 * h])
    return np.concatenate(a), np.concatenate(b)


def _score_pair(pred: Prediction, real_ad, split, ms, options, de=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            t = score(Predictions({pred.name: pred}), real_ad, split, metrics=ms, options=options, de=de)
        except ValueError as err:
            if str(err).startswith("every metric failed"):
                return pd.DataFrame(columns=["predictor", "perturbation", "metric", "value"]), [
                    {"predictor": pred.name, "metric": m.name, "message": str(err)} for m in ms]
            raise
    return t, list(t.attrs.get("errors") or [])


#: Metric needs that read cells directly: not run on stored screens.
_CELL_NEEDS = frozenset({"cells", "real_cells", "train"})


class _RowSource:
    """Means and DE tables over sets of rows of one side, stored (streamed) or in memory."""

    def __init__(self, side, stored: bool, genes, target_sum, cl):
        self.side, self.stored, self.genes, self.cl = side, stored, genes, cl
        self.cols = side.genes.get_indexer(genes)
        if stored:
            from ._evaluate_stored import row_scale

            self.scale = row_scale(side, target_sum)
        else:
            self.X = _expr(side, genes, target_sum)

    def means(self, sets, n_groups: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(means, counts)`` per set of ``(rows, codes)``."""
        if self.stored:
            from ._evaluate_stored import group_sums

            sums = group_sums(self.side, self.cols, self.scale, [(r, c, n_groups) for r, c in sets], self.cl)
        else:
            sums = []
            for r, c in sets:
                ind = sp.csr_matrix((np.ones(r.size), (c, r)), shape=(n_groups, self.X.shape[0]))
                x = ind @ self.X
                sums.append(x.toarray() if sp.issparse(x) else np.asarray(x))
        out = []
        for (r, c), total in zip(sets, sums):
            n = np.bincount(c, minlength=n_groups).astype(float)
            out.append((total / np.maximum(n, 1)[:, None], n))
        return out

    def de(self, rows, labels, control) -> pd.DataFrame:
        """Wilcoxon table of these rows, as ``score`` computes it from an AnnData of them."""
        if self.stored:
            from ._evaluate_stored import stored_de

            return stored_de(self.side, rows, labels, control, self.cols, self.genes, self.scale, self.cl)
        from ..de import wilcoxon

        return wilcoxon(_adata(self.X[rows], labels, self.genes, control, {}), control=control, normalize="auto")


def _score_stored(rs, ps, stored, cl, genes, test, control, ms, options, anchors, n_splits, target_sum, s_base,
                  s_half, name):
    """Scores of the prediction and the anchors when a side is streamed from disk."""
    labels_all = list(test) + [control]
    pos = {lab: i for i, lab in enumerate(labels_all)}
    L = len(labels_all)

    def codes(lab):
        return np.fromiter((pos[x] for x in lab), dtype=np.int64, count=len(lab))

    models = ["prediction"] + (["baseline", "replicate"] if anchors and rs.is_cells else [])
    anchors = len(models) > 1
    skip = [m for m in ms if (m.needs & _CELL_NEEDS) or m.uses_weights]
    run = [m for m in ms if m not in skip]
    errors = [dict(model=mod, metric=m.name, message="needs the cells (or cell-level gene weights) in memory; "
                                                     "evaluate loaded AnnData for this metric")
              for mod in models for m in skip]
    if not run:
        return [pd.DataFrame(columns=["model", "perturbation", "metric", "value"])], errors
    want_de = any("de" in m.needs for m in run)
    split = Split(train=(), test=tuple(test), control=control)
    R = _RowSource(rs, stored["real"], genes, target_sum, cl)
    P = _RowSource(ps, stored["pred"], genes, target_sum, cl)
    keep_r = np.flatnonzero(np.isin(rs.labels, labels_all))
    rlab = rs.labels[keep_r]
    keep_p = np.flatnonzero(np.isin(ps.labels, labels_all))
    plab = ps.labels[keep_p]
    halves = []
    if anchors:
        for child in s_half.spawn(n_splits):
            halves.append(_halves(rlab, np.random.default_rng(child)))
    sets = [(keep_r, codes(rlab))]
    for a, b in halves:
        sets += [(keep_r[a], codes(rlab[a])), (keep_r[b], codes(rlab[b]))]
    real_means = R.means(sets, L)
    pred_mean, pred_n = P.means([(keep_p, codes(plab))], L)[0]

    def profile_ad(mean, n, targets):
        have = [i for i in range(L) if n[i] > 0]
        return _adata(mean[have], np.asarray([labels_all[i] for i in have]), genes, control, targets)

    def prediction(mean, n, fallback_ctrl, pname):
        rows = np.vstack([mean[pos[p]] if n[pos[p]] > 0 else np.full(len(genes), np.nan) for p in test])
        ctrl = mean[pos[control]] if n[pos[control]] > 0 else fallback_ctrl
        return Prediction(name=pname, profiles=pd.DataFrame(rows, index=list(test), columns=genes),
                          control=pd.Series(ctrl, index=genes), cells=None)

    def scored(pred, real_ad, de, model):
        t, e = _score_pair(pred, real_ad, split, run, options, de=de)
        return t.assign(model=model), [dict(model=model, metric=x["metric"], message=x["message"]) for x in e]

    real_mean, real_n = real_means[0]
    real_ctrl = real_mean[pos[control]]
    real_ad = profile_ad(real_mean, real_n, rs.targets)
    de_real = R.de(keep_r, rlab, control) if want_de else None
    frames = []
    de = None
    if want_de:
        de = {"real": de_real}
        if ps.is_cells:
            de[name] = P.de(keep_p, plab, control)
    t, e = scored(prediction(pred_mean, pred_n, real_ctrl, name), real_ad, de, "prediction")
    frames.append(t)
    errors += e
    if anchors:
        rng = np.random.default_rng(s_base)
        mean = np.mean([real_mean[pos[p]] for p in test], axis=0)
        base = Prediction(name="baseline", profiles=pd.DataFrame(np.tile(mean, (len(test), 1)), index=list(test),
                                                                 columns=genes),
                          control=pd.Series(real_ctrl, index=genes), cells=None)
        de_b = None
        if want_de:  # the baseline's cells: drawn from every perturbed cell, as in memory
            rows, labs = _baseline_rows(rlab, control, test, rng)
            de_b = {"real": de_real, "baseline": R.de(keep_r[rows], labs, control)}
        t, e = scored(base, real_ad, de_b, "baseline")
        frames.append(t)
        errors += e
        reps = []
        for k, (a, b) in enumerate(halves):
            (ma, na), (mb, nb) = real_means[1 + 2 * k], real_means[2 + 2 * k]
            ctrl_a = ma[pos[control]]
            de_h = None
            if want_de:
                de_h = {"real": R.de(keep_r[a], rlab[a], control), "replicate": R.de(keep_r[b], rlab[b], control)}
            t, e = scored(prediction(mb, nb, ctrl_a, "replicate"), profile_ad(ma, na, rs.targets), de_h,
                          "replicate")
            reps.append(t.assign(split=k))
            if k == 0:
                errors += e
        rep = pd.concat(reps, ignore_index=True)
        rep = rep.groupby(["metric", "perturbation"], sort=False, observed=True)["value"].mean().reset_index()
        frames.append(rep.assign(model="replicate"))
    return frames, errors


def _prediction(side_X, labels, genes, control, test, real_control_profile, is_cells, name) -> Prediction:
    prof = _profiles(side_X, labels, [p for p in test] + ([control] if control in set(labels) else []))
    profiles = pd.DataFrame(np.vstack([prof[p] for p in test]), index=list(test), columns=genes)
    ctrl = prof.get(control, real_control_profile)
    cells = _adata(side_X, labels, genes, control, {}) if is_cells else None
    return Prediction(name=name, profiles=profiles, control=pd.Series(ctrl, index=genes), cells=cells)


def evaluate(pred, real, *, control: str = "control", perturbation_key: str = "perturbation",
             metrics=None, profile: str | None = None, input_type: str | None = None,
             target_key: str | None = None, train=None, anchors: bool = True, n_boot: int = 1000,
             ci: float = 0.95, cell_bootstrap: int = 0, n_splits: int = 5, layer: str | None = None,
             options: Mapping | None = None, rng=0, name: str = "prediction", backed: bool | None = None,
             chunk_cells: int = 200_000, client=None, n_workers: int | None = None) -> EvaluationResult:
    """Score a model's predictions of a screen against the observed screen.

    Parameters
    ----------
    pred, real : AnnData, or path of an .h5ad file or .zarr store
        Predicted and observed data: cells (several rows per perturbation) or profiles (one
        row per perturbation), counts or log1p-normalised values (detected; ambiguous input
        is refused). A ``.zarr`` store (and an ``.h5ad`` file with ``backed=True``) is read a
        block of rows at a time and never loaded (see ``backed``). Perturbation labels are in ``obs[perturbation_key]``; genes are matched
        by name (any order). ``real`` must hold cells for the anchors and for metrics that
        read cells. A ``pred`` without control rows is measured against ``real``'s control.
    control : str, default "control"
        Label of the control rows (e.g. "non-targeting").
    perturbation_key : str, default "perturbation"
        Column of ``obs`` with the labels, on both sides.
    metrics : str, Metric, callable or list of them, optional
        Registered names (see :func:`simpert.metrics.list_metrics`), Metric objects or
        callables ``fn(inp) -> one value per perturbation``. Exactly one of ``metrics`` and
        ``profile``.
    profile : str, optional
        A named set of metrics with its source's conventions (:data:`EVALUATION_PROFILES`).
        ``"vcc2026"`` runs cell-eval2's suite on raw counts with its own anchors
        (:func:`simpert.metrics.vcc2026_score`); ``"cell-eval-full"`` and ``"vcc"``
        normalise counts to each AnnData's median total, as cell-eval does.
    input_type : {"counts", "lognorm"}, optional
        State the input type; it must agree with what the values show.
    target_key : str, optional
        Column of ``obs`` with each perturbation's target gene; by default a gene named like
        the perturbation label is its target (cell-eval's convention).
    train : AnnData or path, optional
        Observed cells of the model's training perturbations (same genes, same control), used
        by metrics that need a training set (Systema's centroid of training perturbations;
        ``weights="train"`` in ``options``). Without it those metrics fail and are reported in
        ``errors``; Mejia's weighted metrics use, as their source does, per-perturbation
        weights against the other perturbations and need no training set.
    anchors : bool, default True
        Compute the baseline and replicate anchors and the score (needs cells in ``real``).
    n_boot : int, default 1000
        Bootstrap resamples of perturbations for the intervals (0: none).
    ci : float, default 0.95
        Interval level.
    cell_bootstrap : int, default 0
        When > 0, that many resamples also redraw the real cells within each perturbation
        (and the control) and recompute every metric, so the interval covers cell sampling
        too; the percentile interval then comes from these resamples.
    n_splits : int, default 5
        Split-half replicates averaged in the replicate anchor (cell-eval2 uses 5).
    layer : str, optional
        Layer of both AnnData to read instead of ``.X``.
    options : mapping, optional
        Metric options (see :data:`simpert.metrics.DEFAULT_OPTIONS`), or profile overrides
        for ``vcc2026``.
    rng : None, int, SeedSequence or Generator, default 0
        Seeds the baseline's cells, the halves and the bootstrap.
    name : str, default "prediction"
        Name of the prediction in the tables.
    backed : bool or None, default None
        Read stored inputs by blocks of rows instead of loading them: None streams ``.zarr``
        stores and loads ``.h5ad`` files, True streams both, False loads both. Streaming
        computes the profiles, the DE tables and the anchors' resampled and split-half cells
        from the stored rows (the same draws as in memory, so the same values up to the
        order of floating-point sums); metrics that read cells directly (``needs`` "cells",
        "real_cells" or "train"), ``train``, ``cell_bootstrap`` and the ``vcc2026`` profile
        need loaded data and are refused or reported in ``errors``. Memory: the profiles
        (perturbations x genes, one set per split half), the control cells (for DE) and one
        block of rows.
    chunk_cells : int, default 200000
        With stored inputs: rows read at a time (and cells per batch of DE tests).
    client : distributed.Client, str or None
        With stored inputs: read the blocks on this Dask client (or scheduler address).
    n_workers : int, optional
        With stored inputs and no client: a LocalCluster of that many processes (None with
        no client: read in this process).

    Returns
    -------
    EvaluationResult
        ``.per_perturbation``, ``.aggregate`` (with intervals, anchors and score),
        ``.summary()``, ``.errors``, ``.dropped``.

    Raises
    ------
    ValueError
        Bad input: no control, no shared perturbation or gene, NaN or negative values,
        ambiguous input types, unknown metrics or profiles.

    Notes
    -----
    Intervals are BCa bootstrap intervals of the mean over perturbations (their coverage
    is checked on simulated screens; with few perturbations and a heavy-tailed metric, e.g.
    30 perturbations and the MSE of well-measured profiles, they cover about 90% instead of
    95%),
    resampling perturbations (conditional on the observed cells) unless ``cell_bootstrap``
    is set; metrics with one value per set of perturbations get no interval from
    perturbation resampling (NaN), except ``expr_mse_unbiased_capped_norm``, a ratio of
    per-perturbation sums, which is resampled as a ratio. The score's interval treats the
    anchors as fixed. The baseline draws each perturbation's cells from all observed
    perturbed cells (the mean response in distribution); the replicate scores one half of
    each perturbation's cells (and of the control) against the other, averaged over
    ``n_splits`` splits, as cell-eval2's anchor does.
    """
    if (metrics is None) == (profile is None):
        fail("metrics", "given, or a profile (exactly one of 'metrics' and 'profile')",
             "both" if metrics is not None else "neither")
    check("control", control, Instance((str,), "a str"))
    check("perturbation_key", perturbation_key, Instance((str,), "a str"))
    check("input_type", input_type, OneOf(_INPUT_TYPES + (None,)))
    check("n_boot", n_boot, Integer(0))
    check("ci", ci, Interval(0, 1, "neither"))
    check("cell_bootstrap", cell_bootstrap, Integer(0))
    check("n_splits", n_splits, Integer(1))
    check("anchors", anchors, OneOf((True, False)))
    if profile is not None:
        check("profile", profile, OneOf(EVALUATION_PROFILES))
    check("backed", backed, OneOf((True, False, None)))
    check("chunk_cells", chunk_cells, Integer(1))
    stored = {k: _is_stored(x, backed) for k, x in (("pred", pred), ("real", real))}
    if any(stored.values()):
        if profile == "vcc2026":
            fail("profile", "a profile other than 'vcc2026' with stored inputs (cell-eval2's suite reads "
                            "the cells in memory; load them, or use backed=False)", profile)
        if cell_bootstrap > 0:
            fail("cell_bootstrap", "0 with stored inputs (resampling cells needs them in memory)", cell_bootstrap)
        if train is not None:
            fail("train", "None with stored inputs (metrics that need a training set read cells in memory)",
                 "a training set")
    pred = pred if stored["pred"] else _read(pred, "pred")
    real = real if stored["real"] else _read(real, "real")
    ss = as_seed_sequence(rng)
    s_base, s_half, s_boot, s_cells = ss.spawn(4)
    if profile == "vcc2026":
        return _evaluate_vcc2026(pred, real, control=control, key=perturbation_key, target_key=target_key,
                                 layer=layer, options=options, n_boot=n_boot, ci=ci, anchors=anchors,
                                 boot_ss=s_boot, name=name)
    ms = resolve_metrics(profile_metrics(profile) if profile is not None else metrics)
    if any(stored.values()):
        from ._evaluate_stored import client_for

        with client_for(client, n_workers) as cl:
            return _evaluate(pred, real, stored, cl, control=control, perturbation_key=perturbation_key, ms=ms,
                             profile=profile, input_type=input_type, target_key=target_key, train=None,
                             anchors=anchors, n_boot=n_boot, ci=ci, cell_bootstrap=0, n_splits=n_splits,
                             layer=layer, options=options, seeds=(s_base, s_half, s_boot, s_cells), name=name,
                             chunk_cells=chunk_cells)
    return _evaluate(pred, real, stored, None, control=control, perturbation_key=perturbation_key, ms=ms,
                     profile=profile, input_type=input_type, target_key=target_key, train=train, anchors=anchors,
                     n_boot=n_boot, ci=ci, cell_bootstrap=cell_bootstrap, n_splits=n_splits, layer=layer,
                     options=options, seeds=(s_base, s_half, s_boot, s_cells), name=name, chunk_cells=chunk_cells)


def _is_stored(x, backed) -> bool:
    """Whether an input is streamed from disk (see ``evaluate``'s ``backed``)."""
    from .._backed import is_backed_path

    if not is_backed_path(x) or backed is False:
        return False
    return backed is True or Path(x).suffix == ".zarr"


def _evaluate(pred, real, stored, cl, *, control, perturbation_key, ms, profile, input_type, target_key, train,
              anchors, n_boot, ci, cell_bootstrap, n_splits, layer, options, seeds, name, chunk_cells):
    """The body of :func:`evaluate` once the inputs are read or opened."""
    s_base, s_half, s_boot, s_cells = seeds
    if stored["real"]:
        from ._evaluate_stored import stored_side

        rs = stored_side(real, "real", perturbation_key, control, input_type, target_key, layer, chunk_cells, cl)
    else:
        rs = _side(real, "real", perturbation_key, control, input_type, target_key, layer)
    if stored["pred"]:
        from ._evaluate_stored import stored_side

        ps = stored_side(pred, "pred", perturbation_key, control, input_type, None, layer, chunk_cells, cl)
    else:
        ps = _side(pred, "pred", perturbation_key, control, input_type, None, layer)
    if rs.kind != ps.kind:
        fail("pred", f"the same kind of values as 'real' ({rs.kind})", ps.kind)
    if control not in set(rs.labels):
        fail("control", f"a label of real.obs[{perturbation_key!r}]", control)
    if not rs.is_cells and anchors:
        anchors = False
    dropped = {}
    genes = rs.genes[rs.genes.isin(ps.genes)]
    dropped["genes only in real"] = list(rs.genes[~rs.genes.isin(ps.genes)])
    dropped["genes only in pred"] = list(ps.genes[~ps.genes.isin(rs.genes)])
    if len(genes) == 0:
        fail("pred", "genes shared with 'real' (matched by name)", f"none of {len(ps.genes)} genes")
    real_perts = sorted(set(rs.labels) - {control})
    pred_perts = sorted(set(ps.labels) - {control})
    test = [p for p in real_perts if p in set(pred_perts)]
    dropped["perturbations only in pred"] = [p for p in pred_perts if p not in set(real_perts)]
    dropped["perturbations only in real"] = [p for p in real_perts if p not in set(pred_perts)]
    if not test:
        fail("pred", "perturbation labels shared with 'real'",
             f"pred labels {pred_perts[:5]}, real labels {real_perts[:5]}")
    for k, v in dropped.items():
        if v:
            warnings.warn(f"evaluate: {len(v)} {k} left out ({', '.join(map(str, v[:5]))}"
                          f"{', ...' if len(v) > 5 else ''})", UserWarning, stacklevel=3)
    target_sum = "median" if profile in ("cell-eval-full", "vcc") else 1e4
    if stored["real"] or stored["pred"]:
        frames, errors = _score_stored(rs, ps, stored, cl, genes, test, control, ms, options, anchors, n_splits,
                                       target_sum, s_base, s_half, name)
        return _finish(frames, errors, dropped, ms, test, genes, rs, ps, profile, n_boot, ci, 0, n_splits, anchors,
                       target_sum, s_boot, None, 0)
    rX = _expr(rs, genes, target_sum)
    pX = _expr(ps, genes, target_sum)
    keep_r = np.isin(rs.labels, test + [control])
    keep_p = np.isin(ps.labels, test + [control])
    rX, rlab = rX[np.flatnonzero(keep_r)], rs.labels[keep_r]
    pX, plab = pX[np.flatnonzero(keep_p)], ps.labels[keep_p]
    train_perts: list = []
    train_X = train_lab = None
    if train is not None:
        ts_ = _side(_read(train, "train"), "train", perturbation_key, control, rs.kind, None, layer)
        missing = genes[~genes.isin(ts_.genes)]
        if len(missing):
            fail("train", "an AnnData with every gene shared by pred and real", f"{len(missing)} missing")
        train_X = _expr(ts_, genes, target_sum)
        train_lab = ts_.labels
        train_perts = sorted(set(train_lab) - {control} - set(test))
        sel = np.flatnonzero(np.isin(train_lab, train_perts))
        train_X, train_lab = train_X[sel], train_lab[sel]

    def real_adata(X, lab):
        if train_X is not None:
            X = sp.vstack([sp.csr_matrix(X), sp.csr_matrix(train_X)]).tocsr() if sp.issparse(X) or sp.issparse(train_X) \
                else np.vstack([X, train_X])
            lab = np.concatenate([lab, train_lab])
        return _adata(X, lab, genes, control, rs.targets)

    split = Split(train=tuple(train_perts), test=tuple(test), control=control)
    real_ad = real_adata(rX, rlab)
    real_ctrl = np.asarray(rX[np.flatnonzero(rlab == control)].mean(axis=0)).ravel()
    prediction = _prediction(pX, plab, genes, control, test, real_ctrl, ps.is_cells, name)
    frames, errors = [], []
    t, e = _score_pair(prediction, real_ad, split, ms, options)
    frames.append(t.assign(model="prediction"))
    errors += [dict(model="prediction", metric=x["metric"], message=x["message"]) for x in e]
    if anchors:
        base = _baseline_prediction(rX, rlab, control, test, genes, np.random.default_rng(s_base))
        t, e = _score_pair(base, real_ad, split, ms, options)
        frames.append(t.assign(model="baseline"))
        errors += [dict(model="baseline", metric=x["metric"], message=x["message"]) for x in e]
        reps = []
        for k, child in enumerate(s_half.spawn(n_splits)):
            a, b = _halves(rlab, np.random.default_rng(child))
            real_a = real_adata(rX[a], rlab[a])
            ctrl_a = np.asarray(rX[a][rlab[a] == control].mean(axis=0)).ravel()
            half = _prediction(rX[b], rlab[b], genes, control, test, ctrl_a, True, "replicate")
            t, e = _score_pair(half, real_a, split, ms, options)
            reps.append(t.assign(split=k))
            if k == 0:
                errors += [dict(model="replicate", metric=x["metric"], message=x["message"]) for x in e]
        rep = pd.concat(reps, ignore_index=True)
        rep = rep.groupby(["metric", "perturbation"], sort=False, observed=True)["value"].mean().reset_index()
        frames.append(rep.assign(model="replicate"))
    cell_means = None
    if cell_bootstrap > 0 and rs.is_cells:
        cell_means = _cell_bootstrap(prediction, rX, rlab, real_adata, split, ms, options, test, cell_bootstrap,
                                     s_cells)
    return _finish(frames, errors, dropped, ms, test, genes, rs, ps, profile, n_boot, ci, cell_bootstrap, n_splits,
                   anchors, target_sum, s_boot, cell_means, len(train_perts))


def _finish(frames, errors, dropped, ms, test, genes, rs, ps, profile, n_boot, ci, cell_bootstrap, n_splits, anchors,
            target_sum, s_boot, cell_means, n_train) -> EvaluationResult:
    """Aggregates, intervals and anchored scores of the per-perturbation values."""
    per = pd.concat(frames, ignore_index=True)[["model", "perturbation", "metric", "value"]]
    per = per.dropna(subset=["metric"])

    # aggregates and intervals
    names = [m.name for m in ms]
    orient = {m.name: m.higher_is_better for m in ms}
    per_set = _per_set_names(ms)
    idx = _boot_index(len(test), n_boot, s_boot) if n_boot > 0 else None
    W = {m: _wide(per, m, test) for m in ("prediction", "baseline", "replicate")}
    rows = []
    for m in names:
        u_vals = W["prediction"][m].to_numpy(dtype=float) if m in W["prediction"] else np.full(len(test), np.nan)
        b_vals = W["baseline"][m].to_numpy(dtype=float) if m in W["baseline"] else np.full(len(test), np.nan)
        r_vals = W["replicate"][m].to_numpy(dtype=float) if m in W["replicate"] else np.full(len(test), np.nan)
        u, b, r = (float(np.nanmean(v)) if np.isfinite(v).any() else np.nan for v in (u_vals, b_vals, r_vals))
        lo = hi = s_lo = s_hi = np.nan
        method = "none"
        s, note = _anchored(u, b, r, orient[m])
        if cell_means is not None and m in cell_means:
            boots = cell_means[m]
            a = (1 - ci) / 2
            lo, hi = (float(np.nanquantile(boots, q)) for q in (a, 1 - a))
            method = "perturbations and cells"
        elif idx is not None and m not in per_set:
            lo, hi, boots = _ci(u_vals, idx, ci)
            method = "perturbations"
        else:
            boots = None
            method = "none (one value per set)" if m in per_set else "none"
        if boots is not None and np.isfinite(s):
            with np.errstate(invalid="ignore", divide="ignore"):
                sb = (boots - b) / (r - b)
            a = (1 - ci) / 2
            if np.isfinite(sb).sum() > 1:
                s_lo, s_hi = float(np.nanquantile(sb, a)), float(np.nanquantile(sb, 1 - a))
        rows.append(dict(metric=m, value=u, ci_low=lo, ci_high=hi, n=int(np.isfinite(u_vals).sum()),
                         baseline=b, replicate=r, score=s, score_ci_low=s_lo, score_ci_high=s_hi,
                         higher_is_better=orient[m], ci_method=method, score_note=note))
    agg = pd.DataFrame(rows).set_index("metric")
    settings = dict(input_type=rs.kind, profile=profile, n_perturbations=len(test), n_genes=len(genes),
                    n_boot=n_boot, ci_level=ci, cell_bootstrap=cell_bootstrap, n_splits=n_splits,
                    anchors=bool(anchors), target_sum=target_sum, real_is_cells=rs.is_cells,
                    pred_is_cells=ps.is_cells, ci_method="perturbations" if cell_means is None
                    else "perturbations and cells", n_train=n_train,
                    per_set_metrics=sorted(per_set))
    return EvaluationResult(per, agg, errors, dropped, settings)


def _anchored(u: float, b: float, r: float, higher_is_better) -> tuple[float, str]:
    """The score (u - b) / (r - b), or NaN with the reason it is undefined.

    As cell-eval2 does, a replicate anchor that is not better than the baseline (by the
    metric's orientation) leaves the scale without meaning, and no score is given.
    """
    if not np.isfinite([u, b, r]).all():
        return np.nan, "an anchor or the value is undefined"
    if higher_is_better is None:
        return np.nan, "the metric has no orientation"
    if (r <= b) if higher_is_better else (r >= b):
        return np.nan, "the replicate anchor is not better than the baseline"
    return (u - b) / (r - b), ""


def _cell_bootstrap(prediction, rX, rlab, real_adata, split, ms, options, test, B, ss):
    """Aggregates over resamples that redraw perturbations and, within each, the real cells."""
    out = {m.name: [] for m in ms}
    for child in ss.spawn(B):
        g = np.random.default_rng(child)
        rows = []
        for lab in np.unique(rlab):
            r = np.flatnonzero(rlab == lab)
            rows.append(g.choice(r, size=r.size, replace=True))
        rows = np.concatenate(rows)
        t, _ = _score_pair(prediction, real_adata(rX[rows], rlab[rows]), split, ms, options)
        wide = t.pivot_table(index="perturbation", columns="metric", values="value", aggfunc="first").reindex(test)
        pick = g.integers(0, len(test), len(test))
        for m in out:
            if m in wide:
                v = wide[m].to_numpy(dtype=float)[pick]
                out[m].append(float(np.nanmean(v)) if np.isfinite(v).any() else np.nan)
    return {m: np.asarray(v) for m, v in out.items() if v}


def _evaluate_vcc2026(pred, real, *, control, key, target_key, layer, options, n_boot, ci, anchors, boot_ss,
                      name) -> EvaluationResult:
    from ._vcc2026 import VCC2026_METRICS, _score_one, vcc2026_anchors, vcc2026_metrics

    tg = None
    if target_key is not None:
        if target_key not in real.obs.columns:
            fail("target_key", "a column of real.obs", target_key)
        t = real.obs[[key, target_key]].astype(str).drop_duplicates(key)
        tg = {a: b for a, b in zip(t[key], t[target_key]) if a != control}
    res = vcc2026_metrics(pred, real, pert_col=key, control=control, target_genes=tg, layer=layer, options=options)
    anc, errors = None, []
    if anchors:
        try:
            anc = vcc2026_anchors(real, pert_col=key, control=control, target_genes=tg, layer=layer,
                                  options=options)
        except ValueError as err:  # a panel cell-eval2 refuses to anchor: values and intervals stay
            errors.append({"model": "anchors", "metric": "vcc2026", "message": str(err)})
    pp = res.per_perturbation
    perts = list(pp.index)
    comp = ["expr_mse_unbiased_capped", "expr_distance_unbiased"]
    long = pp[[c for c in list(VCC2026_METRICS) + comp if c in pp.columns]].reset_index().melt(
        id_vars="perturbation", var_name="metric", value_name="value").assign(model="prediction")
    idx = _boot_index(len(perts), n_boot, boot_ss) if n_boot > 0 else None
    rows = []
    for m in VCC2026_METRICS:
        u = float(res.aggregate[m])
        b = float(anc.loc[m, "baseline"]) if anc is not None else np.nan
        r = float(anc.loc[m, "replicate"]) if anc is not None else np.nan
        scorable = anc is not None and np.isfinite(b) and np.isfinite(r) and r != b
        s = _score_one(m, u, b, r) if scorable else np.nan
        lo = hi = s_lo = s_hi = np.nan
        boots = None
        if idx is not None:
            if m == "expr_mse_unbiased_capped_norm":
                N = pp["expr_mse_unbiased_capped"].to_numpy(dtype=float)
                D = pp["expr_distance_unbiased"].to_numpy(dtype=float)
                ok = np.isfinite(N) & np.isfinite(D)
                with np.errstate(invalid="ignore", divide="ignore"):
                    boots = np.where(ok, N, 0)[idx].sum(1) / np.where(ok, D, 0)[idx].sum(1)
            else:
                _, _, boots = _ci(pp[m].to_numpy(dtype=float), idx, ci)
            a = (1 - ci) / 2
            lo, hi = float(np.nanquantile(boots, a)), float(np.nanquantile(boots, 1 - a))
            if scorable:
                sb = np.array([_score_one(m, x, b, r) for x in boots])
                s_lo, s_hi = float(np.nanquantile(sb, a)), float(np.nanquantile(sb, 1 - a))
        rows.append(dict(metric=m, value=u, ci_low=lo, ci_high=hi, n=int(np.isfinite(pp[m]).sum()) if m in pp else
                         len(perts), baseline=b, replicate=r, score=s, score_ci_low=s_lo, score_ci_high=s_hi,
                         higher_is_better=registry[m].higher_is_better, ci_method="perturbations"))
    agg = pd.DataFrame(rows).set_index("metric")
    settings = dict(input_type="counts", profile="vcc2026", n_perturbations=len(perts), n_boot=n_boot,
                    ci_level=ci, anchors=bool(anchors), ci_method="perturbations",
                    per_set_metrics=["expr_mse_unbiased_capped_norm"],
                    avg_score=float(agg["score"].mean()) if anchors else np.nan)
    per = long[["model", "perturbation", "metric", "value"]]
    if errors:
        warnings.warn(f"evaluate: no vcc2026 anchors: {errors[0]['message']}", UserWarning, stacklevel=3)
    return EvaluationResult(per, agg, errors, {}, settings)


# --------------------------------------------------------------------------- compare


@dataclass
class ComparisonResult:
    """Paired comparison of two predictions of the same screen.

    Attributes
    ----------
    table : DataFrame
        One row per metric: ``a``, ``b`` (the two means), ``difference`` (a - b, mean of the
        paired differences over shared perturbations), ``ci_low``, ``ci_high`` (bootstrap
        over perturbations), ``t``, ``p_value`` (paired t-test over perturbations),
        ``n``, ``better`` ("a", "b" or "tie" at ``alpha``, by the metric's orientation).
    per_perturbation : DataFrame
        Tidy paired values: perturbation, metric, a, b.
    evaluations : tuple of EvaluationResult
    """

    table: pd.DataFrame
    per_perturbation: pd.DataFrame
    evaluations: tuple

    def summary(self) -> EvaluationSummary:
        """The comparison table with a line on how it was made.

        Returns
        -------
        EvaluationSummary
        """
        return EvaluationSummary(self.table.round(4), [
            "difference = a - b, paired over perturbations; interval: bootstrap percentile; "
            "p: paired t-test"])


def compare(pred_a, pred_b, real, *, alpha: float = 0.05, **kwargs) -> ComparisonResult:
    """Paired difference of two models per metric, with an interval and a p-value.

    Parameters
    ----------
    pred_a, pred_b : AnnData or path
        The two predictions (as for :func:`evaluate`).
    real : AnnData or path
        The observed screen.
    alpha : float, default 0.05
        Level at which ``better`` calls a winner.
    **kwargs
        Passed to :func:`evaluate` (``metrics`` or ``profile``, ``control``,
        ``perturbation_key``, ``n_boot``, ``ci``, ``rng``, ...); anchors are not computed.

    Returns
    -------
    ComparisonResult
    """
    check("alpha", alpha, Interval(0, 1, "neither"))
    kwargs = dict(kwargs)
    kwargs["anchors"] = False
    n_boot = kwargs.get("n_boot", 1000)
    level = kwargs.get("ci", 0.95)
    ss = as_seed_sequence(kwargs.pop("rng", 0))
    s_a, s_b, s_boot = ss.spawn(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ea = evaluate(pred_a, real, rng=s_a, name="a", **kwargs)
        eb = evaluate(pred_b, real, rng=s_b, name="b", **kwargs)
    wa = _wide(ea.per_perturbation, "prediction", sorted(set(ea.per_perturbation["perturbation"])))
    wb = _wide(eb.per_perturbation, "prediction", sorted(set(eb.per_perturbation["perturbation"])))
    perts = [p for p in wa.index if p in set(wb.index)]
    if not perts:
        fail("pred_b", "predictions of perturbations shared with pred_a", "none shared")
    rows, tidy = [], []
    for m in ea.aggregate.index:
        if m not in wa or m not in wb:
            continue
        a = wa.loc[perts, m].to_numpy(dtype=float)
        b = wb.loc[perts, m].to_numpy(dtype=float)
        ok = np.isfinite(a) & np.isfinite(b)
        d = (a - b)[ok]
        tidy.append(pd.DataFrame({"perturbation": perts, "metric": m, "a": a, "b": b}))
        hib = ea.aggregate.loc[m, "higher_is_better"]
        lo = hi = t = p = np.nan
        if d.size >= 2:
            if n_boot:
                g = np.random.default_rng(s_boot)
                idx = g.integers(0, d.size, size=(n_boot, d.size))
                means = d[idx].mean(axis=1)
                q = (1 - level) / 2
                lo, hi = float(np.quantile(means, q)), float(np.quantile(means, 1 - q))
            if np.all(d == d[0]):
                t, p = (0.0, 1.0) if d[0] == 0 else (np.inf * np.sign(d[0]), 0.0)
            else:
                t, p = st.ttest_1samp(d, 0.0)
        diff = float(d.mean()) if d.size else np.nan
        better = "tie"
        if np.isfinite(p) and p < alpha and hib is not None:
            better = "a" if (diff > 0) == bool(hib) else "b"
        rows.append(dict(metric=m, a=float(np.nanmean(a)), b=float(np.nanmean(b)), difference=diff, ci_low=lo,
                         ci_high=hi, t=float(t), p_value=float(p), n=int(d.size), better=better))
    table = pd.DataFrame(rows).set_index("metric")
    per = pd.concat(tidy, ignore_index=True) if tidy else pd.DataFrame(columns=["perturbation", "metric", "a", "b"])
    return ComparisonResult(table, per, (ea, eb))
