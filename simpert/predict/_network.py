"""A GGRN-style network-restricted ridge model.

Fit (training data only: control cells and the cells of the training perturbations, or
their samples for pseudobulk and raw data; at most ``max_cells`` rows, subsampled with the
seed): every gene ``j`` is regressed on the expression of its regulators ``R_j`` (in the
profile representation: log-normalised counts, or ``X`` for raw data) by ridge regression
with an intercept, on standardised regulators with penalty ``penalty * n`` (so
``penalty`` is per sample). As in GGRN, rows where gene ``j`` itself is the perturbed
gene are left out of gene ``j``'s regression (its expression there is set by the
intervention, not by its regulators). Genes without regulators get the intercept only
(the training mean).

Regulators: the true network when the screen has one (``truth['network']``, entry
``[i, j]`` = effect of ``i`` on ``j``; every ``i`` with a non-zero entry regulates ``j``),
a user-given ``G x G`` matrix, or else a correlation screen on the training rows: the
candidates are the genes flagged ``var['is_regulator']`` (the perturbed genes, for a
simulated screen) or, when none is flagged, the ``n_candidates`` most variable genes; each
gene keeps the ``n_regulators`` candidates with the largest absolute Pearson correlation
(itself excluded).

Prediction for a test perturbation with target ``t``: start from the control profile the
prediction carries (observed training controls), clamp gene ``t`` to its revealed value
(the observed test profile's value, PEREGGRN's convention, or the oracle's), then apply the
fitted model ``steps`` times, clamping ``t`` after every step.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._profiles import counts_matrix, lognormalize
from .._validation import ArrayLike, Instance, Integer, Interval, OneOf, check
from ._predictors import _frame, oracle_profiles
from ._registry import Predictor, register

__all__ = ["NetworkRidge"]


@register
class NetworkRidge(Predictor):
    """GGRN-style ridge regression of each gene on its regulators, run from the control.

    Regulators come from the true network when the screen has one, else from a
    correlation screen on training data (see ``simpert.predict._network``). The target
    gene is clamped to its revealed value.

    Parameters
    ----------
    network : {"auto", "true", "correlation"} or array (G x G), default "auto"
        Source of the regulators: ``"auto"`` uses the true network if the screen has one,
        else the correlation screen.
    n_regulators : int, default 10
        Regulators per gene in the correlation screen.
    n_candidates : int, default 200
        Candidate regulators (most variable genes) when no gene is flagged as a regulator.
    penalty : float, default 1.0
        Ridge penalty per training row on standardised regulators.
    steps : int, default 1
        Applications of the model (GGRN's prediction time scale).
    clamp : {"observed", "oracle"}, default "observed"
        Value of the targeted gene.
    max_cells : int, default 20000
        Training rows kept (random subsample above it).
    tag : str, optional
        Short name shown in the label, ``network_ridge(<tag>)``, so that several custom
        networks can be compared in one call of :func:`simpert.predict.make`.
    """

    name = "network_ridge"
    needs_truth = False
    _spec = {
        "n_regulators": Integer(1),
        "n_candidates": Integer(1),
        "penalty": Interval(0.0, None, closed="neither"),
        "steps": Integer(1),
        "clamp": OneOf(("observed", "oracle")),
        "max_cells": Integer(2),
        "tag": Instance((str, type(None)), "a string or None"),
    }

    def __init__(self, network="auto", n_regulators: int = 10, n_candidates: int = 200,
                 penalty: float = 1.0, steps: int = 1, clamp: str = "observed", max_cells: int = 20000,
                 tag: str | None = None):
        self.network = network
        self.n_regulators = n_regulators
        self.n_candidates = n_candidates
        self.penalty = penalty
        self.steps = steps
        self.clamp = clamp
        self.max_cells = max_cells
        self.tag = tag

    def validate(self) -> None:
        """Check the parameters (ValueError/TypeError naming the parameter)."""
        super().validate()
        if isinstance(self.network, str):
            check("network", self.network, OneOf(("auto", "true", "correlation")))
        else:
            check("network", self.network, ArrayLike(ndim=2))

    @property
    def label(self) -> str:
        """``network_ridge(<tag>)`` when tagged, else the registry name with its parameters."""
        if self.tag is not None:
            return f"{self.name}({self.tag})"
        if isinstance(self.network, str):
            return super().label
        saved = self.network
        try:
            self.network = "custom"
            return super().label
        finally:
            self.network = saved

    # -- training data ----------------------------------------------------------------
    def _training(self, ctx):
        adata = ctx.adata
        labels = adata.obs["perturbation"].astype(str).to_numpy()
        keep = np.flatnonzero(np.isin(labels, [ctx.split.control] + list(ctx.split.train)))
        gen = ctx.rng("network_ridge:rows")
        if keep.size > self.max_cells:
            keep = np.sort(gen.choice(keep, self.max_cells, replace=False))
        if ctx.representation == "lognorm":
            Z = lognormalize(counts_matrix(adata)[keep], target_sum=ctx.target_sum)
        else:
            Z = adata.X[keep]
        Z = Z.toarray() if sp.issparse(Z) else np.asarray(Z, dtype=float)
        row_target = ctx.target_of(labels[keep])
        row_target[labels[keep] == ctx.split.control] = -1
        return Z, row_target

    def _regulators(self, ctx, Z) -> np.ndarray:
        """Regulator columns per gene, shape (G, K), -1 as padding."""
        G = Z.shape[1]
        net = None
        if not isinstance(self.network, str):
            net = np.asarray(self.network, dtype=float)
            if net.shape != (G, G):
                raise ValueError(f"parameter 'network' must be a {G} x {G} matrix; got shape {net.shape}")
        elif self.network in ("auto", "true"):
            tr = ctx.meta.get("truth", {})
            if "network" in tr:
                net = np.asarray(tr["network"], dtype=float).reshape(G, G)
            elif self.network == "true":
                raise ValueError("parameter 'network' is 'true' but the screen carries no network "
                                 "(adata.uns['simpert']['truth']['network'])")
        if net is not None:
            adj = (net != 0) & ~np.eye(G, dtype=bool)
            k = max(int(adj.sum(axis=0).max()), 1)
            # for each target column j, the regulator rows i (sorted), padded with -1
            order = np.argsort(~adj, axis=0, kind="stable")[:k].T  # G x k
            valid = np.take_along_axis(adj.T, order, axis=1)
            return np.where(valid, order, -1)
        # correlation screen
        flagged = np.zeros(G, dtype=bool)
        if "is_regulator" in ctx.adata.var:
            flagged = ctx.adata.var["is_regulator"].to_numpy(dtype=bool)
        sd = Z.std(axis=0)
        cand = np.flatnonzero(flagged & (sd > 0))
        if cand.size == 0:
            cand = np.argsort(-sd, kind="stable")[: min(self.n_candidates, G)]
            cand = cand[sd[cand] > 0]
        if cand.size == 0:
            return np.full((G, 1), -1)
        Zs = (Z - Z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        corr = np.abs(Zs[:, cand].T @ Zs) / Z.shape[0]  # cand x G
        corr[np.arange(cand.size), cand] = -1.0  # a gene never regulates itself
        k = min(self.n_regulators, cand.size)
        top = np.argsort(-corr, axis=0, kind="stable")[:k].T  # G x k indices into cand
        ok = np.take_along_axis(corr.T, top, axis=1) > 0
        return np.where(ok, cand[top], -1)

    # -- fit ----------------------------------------------------------------------------
    def fit(self, ctx):
        """Fit the model on the training rows of ``ctx``.

        Returns
        -------
        intercept : ndarray (G,)
        regulators : ndarray (G, K) of int, -1 as padding
        weights : ndarray (G, K)
        """
        Z, row_target = self._training(ctx)
        n, G = Z.shape
        reg = self._regulators(ctx, Z)
        K = reg.shape[1]
        lam = float(self.penalty)
        Zp = np.concatenate([Z, np.zeros((n, 1))], axis=1)  # column G: padding
        regp = np.where(reg >= 0, reg, G)
        cols = np.unique(regp)
        pos = np.full(G + 1, -1)
        pos[cols] = np.arange(cols.size)
        sums_c = Zp[:, cols].sum(axis=0)
        cross_cc = Zp[:, cols].T @ Zp[:, cols]
        cross_cg = Zp[:, cols].T @ Z
        sums_g = Z.sum(axis=0)
        intercept = np.empty(G)
        weights = np.zeros((G, K))

        def solve(genes, nn, s_c, c_cc, c_cg, s_g):
            idx = pos[regp[genes]]  # m x K
            mean_c = s_c / nn
            cov = c_cc / nn - np.outer(mean_c, mean_c)
            covg = c_cg / nn - np.outer(mean_c, s_g / nn)
            A = cov[idx[:, :, None], idx[:, None, :]]
            b = np.take_along_axis(covg[:, genes].T, idx, axis=1)
            var = np.einsum("mkk->mk", A)
            pad = regp[genes] == G
            var = np.where(pad | (var <= 0), 1.0, var)
            A = A + lam * var[:, :, None] * np.eye(K)[None, :, :]
            A[pad] = 0.0
            m_i, k_i = np.nonzero(pad)
            A[m_i, k_i, k_i] = 1.0
            b = np.where(pad, 0.0, b)
            w = np.linalg.solve(A, b[:, :, None])[:, :, 0]
            w = np.where(pad, 0.0, w)
            icpt = s_g[genes] / nn - np.einsum("mk,mk->m", w, mean_c[idx])
            return w, icpt

        all_genes = np.arange(G)
        w, icpt = solve(all_genes, float(n), sums_c, cross_cc, cross_cg, sums_g)
        weights[:] = w
        intercept[:] = icpt
        # leave out the rows where the gene itself is perturbed (few genes: the training targets)
        for j in np.unique(row_target[row_target >= 0]):
            drop = row_target == j
            nn = float(n - drop.sum())
            if nn < 2:
                continue
            Zd = Zp[drop][:, cols]
            s_c = sums_c - Zd.sum(axis=0)
            c_cc = cross_cc - Zd.T @ Zd
            c_cg = cross_cg[:, [j]] - Zd.T @ Z[drop][:, [j]]
            s_g = np.zeros(G)
            s_g[j] = sums_g[j] - Z[drop, j].sum()
            idx = pos[regp[[j]]]
            mean_c = s_c / nn
            cov = c_cc / nn - np.outer(mean_c, mean_c)
            covg = (c_cg[:, 0] / nn - mean_c * (s_g[j] / nn))
            A = cov[idx[0][:, None], idx[0][None, :]]
            b = covg[idx[0]]
            pad = regp[j] == G
            var = np.where(pad | (np.diag(A) <= 0), 1.0, np.diag(A))
            A = A + lam * np.diag(var)
            A[pad, :] = 0.0
            A[:, pad] = 0.0
            A[pad, pad] = 1.0
            b = np.where(pad, 0.0, b)
            wj = np.where(pad, 0.0, np.linalg.solve(A, b))
            weights[j] = wj
            intercept[j] = s_g[j] / nn - wj @ mean_c[idx[0]]
        return intercept, reg, weights

    def predict(self, ctx):
        intercept, reg, weights = ctx.cached(f"network_ridge:fit:{self.label}", lambda: self.fit(ctx))
        G = len(ctx.genes)
        t = ctx.target_of(ctx.test)
        rows = np.flatnonzero(t >= 0)
        src = oracle_profiles(ctx).loc[ctx.test] if self.clamp == "oracle" else ctx.observed.loc[ctx.test]
        clamp_val = src.to_numpy()[rows, t[rows]]
        x = np.tile(ctx.control.to_numpy(), (len(ctx.test), 1))
        x[rows, t[rows]] = clamp_val
        regp = np.where(reg >= 0, reg, G)
        for _ in range(int(self.steps)):
            xp = np.concatenate([x, np.zeros((x.shape[0], 1))], axis=1)
            x = intercept[None, :] + np.einsum("pgk,gk->pg", xp[:, regp], weights)
            x[rows, t[rows]] = clamp_val
        return _frame(ctx, x)
