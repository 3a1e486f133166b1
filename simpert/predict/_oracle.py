"""True expected profiles: the quantity the oracle predicts.

For a count screen the profile of perturbation ``p`` is ``mean_c log1p(T x_cg / L_c)`` over
its cells. The oracle is the expectation of exactly that, given the realised cell design
(each cell's size factor, replicate, escape status and knockdown, all recorded in ``obs``)
and the true count model: per-cell negative binomial means come from the simulator's own
count model (``simpert.sim``), and :mod:`simpert.predict._expected` turns them into expected
log-normalised values. To save work, cells of a group that share replicate and escape status
are pooled into ``n_nodes`` bins of similar size factor whose mean NB means stand for them
(the target gene, whose mean varies with each cell's knockdown, is always computed cell by
cell). Pseudobulk samples are sums of cells: their counts are treated as negative binomial
with the summed mean and the summed variance.

For ``raw`` data (``noise_only`` and continuous ``var_network`` output) the expected profile
is the true mean of ``X``: the control mean (``truth['expected_control']``, else
``var['base_mean']``: 0 for Gaussian noise) plus the true effect (``truth['log2fc']``, on
the data scale), or times ``2**log2fc`` for negative binomial ``noise_only`` data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._expected import expected_cell_profiles, expected_log1p_ratio

__all__ = ["expected_profiles", "expected_shift_profile", "N_NODES"]

#: Size-factor bins per (group, replicate, escape status) when pooling cells.
N_NODES = 8


class _CellModel:
    """Per-cell NB means of a simulated screen (cells or pseudobulk)."""

    def __init__(self, ctx):
        adata = ctx.adata
        meta = ctx.meta
        self.ctx = ctx
        self.phi = np.asarray(adata.var["dispersion"], dtype=float) if "dispersion" in adata.var else None
        tr = ctx.truth
        self.perts = list(np.asarray(tr["perturbations"], dtype=object).astype(str))
        self.control = str(meta.get("control", ctx.split.control))
        self.engine = None
        design = meta.get("design")
        if "count_model" in meta:
            from ..sim._engine import Design, expected_matrix, model_from_uns

            self.engine = (model_from_uns(adata), expected_matrix, Design)
        if self.phi is None:
            raise ValueError("parameter 'adata' must have var['dispersion'] (the true NB dispersion) "
                             "for the oracle; got an AnnData without it")
        if design is not None:
            # pseudobulk: the per-cell design lives in uns
            self.pseudobulk = True
            self.group = np.asarray(design["group"], dtype=np.int64)
            self.replicate = np.asarray(design["replicate"], dtype=np.int64)
            self.guide = np.asarray(design["guide"], dtype=np.int64)
            self.sample = np.asarray(design["sample"], dtype=np.int64)
            self.s = np.asarray(design["size_factor"], dtype=float)
            self.escaped = np.asarray(design["escaped"], dtype=bool)
            self.knock = np.asarray(design["knockdown"], dtype=float)
            self.sample_group = self._labels_to_group(adata.obs["perturbation"].astype(str).to_numpy())
        else:
            self.pseudobulk = False
            obs = adata.obs
            self.group = self._labels_to_group(obs["perturbation"].astype(str).to_numpy())
            self.replicate = obs["replicate"].to_numpy(dtype=np.int64) if "replicate" in obs else np.zeros(adata.n_obs, np.int64)
            self.guide = np.full(adata.n_obs, -1, dtype=np.int64)
            self.s = obs["size_factor"].to_numpy(dtype=float) if "size_factor" in obs else np.ones(adata.n_obs)
            self.escaped = obs["escaped"].to_numpy(dtype=bool) if "escaped" in obs else np.zeros(adata.n_obs, bool)
            self.knock = obs["knockdown"].to_numpy(dtype=float) if "knockdown" in obs else np.zeros(adata.n_obs)
        self.log2fc = np.asarray(tr["log2fc"], dtype=float).reshape(len(self.perts), -1)
        self.base = np.asarray(adata.var["base_mean"], dtype=float)

    def _labels_to_group(self, labels) -> np.ndarray:
        lookup = {p: i + 1 for i, p in enumerate(self.perts)}
        lookup[self.control] = 0
        out = np.array([lookup.get(x, -1) for x in labels], dtype=np.int64)
        if np.any(out < 0):
            bad = sorted(set(np.asarray(labels)[out < 0]))[:3]
            raise ValueError(f"parameter 'adata' must have perturbations listed in its truth; got {bad!r}")
        return out

    def means(self, cells: np.ndarray) -> np.ndarray:
        """NB means (len(cells) x G) of the given design cells."""
        if self.engine is not None:
            model, expected_matrix, Design = self.engine
            d = Design(group=self.group[cells], guide=self.guide[cells], replicate=self.replicate[cells])
            return expected_matrix(model, d, self.s[cells], self.escaped[cells], self.knock[cells])
        # no count model: every cell of a perturbation at its expected log2 fold change
        g = self.group[cells]
        lfc = np.zeros((cells.size, self.base.size))
        pert = g > 0
        lfc[pert] = self.log2fc[g[pert] - 1]
        return self.s[cells, None] * self.base[None, :] * np.exp2(lfc)

    def target_col(self, group: int) -> int:
        if group == 0 or self.engine is None:
            return -1
        return int(self.engine[0].target_index[group - 1])


def _pool(mu: np.ndarray, s: np.ndarray, key: np.ndarray, n_nodes: int):
    """Representative rows (bin means of ``mu``) and weights for one group's cells."""
    rows, weights = [], []
    n = mu.shape[0]
    for k in np.unique(key):
        idx = np.flatnonzero(key == k)
        idx = idx[np.argsort(s[idx], kind="stable")]
        for part in np.array_split(idx, min(n_nodes, idx.size)):
            rows.append(mu[part].mean(axis=0))
            weights.append(part.size / n)
    return np.vstack(rows), np.asarray(weights)


def _group_expectation(model: _CellModel, cells: np.ndarray, group: int, T: float, n_nodes: int,
                       shift: np.ndarray | None = None) -> np.ndarray:
    mu = model.means(cells)
    if shift is not None:
        mu = mu * np.exp2(shift)[None, :]
    phi = model.phi
    if model.pseudobulk:
        return _pseudobulk_expectation(model, cells, mu, T)
    key = model.escaped[cells].astype(np.int64) * (int(model.replicate.max()) + 1) + model.replicate[cells]
    rows, w = _pool(mu, model.s[cells], key, n_nodes)
    prof = w @ expected_cell_profiles(rows, phi, target_sum=T)
    t = model.target_col(group)
    if t >= 0:
        var = mu + phi[None, :] * mu * mu
        lib, lib_var = mu.sum(axis=1), var.sum(axis=1)
        e_t = expected_log1p_ratio(mu[:, t], lib - mu[:, t], phi[t], var_r=lib_var - var[:, t], target_sum=T)
        prof[t] = e_t.mean()
    return prof


def _pseudobulk_expectation(model: _CellModel, cells: np.ndarray, mu: np.ndarray, T: float) -> np.ndarray:
    samples, inv = np.unique(model.sample[cells], return_inverse=True)
    G = mu.shape[1]
    tot = np.zeros((samples.size, G))
    sq = np.zeros((samples.size, G))
    np.add.at(tot, inv, mu)
    np.add.at(sq, inv, mu * mu)
    phi = model.phi[None, :] * np.divide(sq, tot * tot, out=np.zeros_like(sq), where=tot > 0)
    var = tot + phi * tot * tot
    lib, lib_var = tot.sum(axis=1, keepdims=True), var.sum(axis=1, keepdims=True)
    e = expected_log1p_ratio(tot, lib - tot, phi, var_r=lib_var - var, target_sum=T)
    return e.mean(axis=0)


def _raw_expected(ctx, labels) -> pd.DataFrame:
    tr = ctx.truth
    G = len(ctx.genes)
    perts = list(np.asarray(tr["perturbations"], dtype=object).astype(str))
    effects = np.asarray(tr["log2fc"], dtype=float).reshape(len(perts), G)
    params = ctx.meta.get("params", {})
    multiplicative = ctx.meta.get("kind") == "noise_only" and params.get("noise") == "nb"
    if "expected_control" in tr:
        base = np.asarray(tr["expected_control"], dtype=float).reshape(G)
    elif "base_mean" in ctx.adata.var:
        base = np.asarray(ctx.adata.var["base_mean"], dtype=float)
    else:
        base = np.zeros(G)
    pos = {p: i for i, p in enumerate(perts)}
    out = np.empty((len(labels), G))
    for i, lab in enumerate(labels):
        eff = effects[pos[lab]] if lab in pos else np.zeros(G)
        out[i] = base * np.exp2(eff) if multiplicative else base + eff
    return pd.DataFrame(out, index=pd.Index(labels), columns=ctx.genes.copy())


def expected_profiles(ctx, labels, *, n_nodes: int = N_NODES) -> pd.DataFrame:
    """Expected observed profile of each group in ``labels`` (control label allowed).

    Parameters
    ----------
    ctx : Context
    labels : sequence of str
    n_nodes : int
        Size-factor bins per (group, replicate, escape status).

    Returns
    -------
    DataFrame, labels x genes
    """
    labels = [str(x) for x in labels]
    if ctx.representation == "raw":
        return _raw_expected(ctx, labels)
    model = _CellModel(ctx)
    lookup = {p: i + 1 for i, p in enumerate(model.perts)}
    lookup[model.control] = 0
    out = np.empty((len(labels), len(ctx.genes)))
    cell_group = model.group
    for i, lab in enumerate(labels):
        if lab not in lookup:
            raise ValueError(f"parameter 'adata' must have perturbation {lab!r} in its truth; it has not")
        g = lookup[lab]
        cells = np.flatnonzero(cell_group == g)
        if cells.size == 0:
            raise ValueError(f"parameter 'adata' must hold cells of {lab!r} to compute its expected profile")
        out[i] = _group_expectation(model, cells, g, ctx.target_sum, n_nodes)
    return pd.DataFrame(out, index=pd.Index(labels), columns=ctx.genes.copy())


def expected_shift_profile(ctx, shift: np.ndarray, *, n_nodes: int = N_NODES) -> pd.Series:
    """Expected profile of the control cells with every gene's mean multiplied by ``2**shift``."""
    if ctx.representation == "raw":
        raise ValueError("a log2 shift has no meaning for raw (non-count) data")
    model = _CellModel(ctx)
    cells = np.flatnonzero(model.group == 0)
    prof = _group_expectation(model, cells, 0, ctx.target_sum, n_nodes, shift=np.asarray(shift, float))
    return pd.Series(prof, index=ctx.genes.copy())
