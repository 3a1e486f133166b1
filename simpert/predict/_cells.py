"""Predicted cells for predictors that make profiles only.

Construction (cheap, documented, the same for every profile-only predictor): for each test
perturbation ``p``, draw as many cells as the screen observed for ``p``. Each cell's library
size is resampled from the observed training-control cells' totals; its expected count of
gene ``g`` is ``L * f_pg`` with ``f_pg`` proportional to ``c_g * exp(q_pg - q0_g)``, where
``c_g`` is the mean normalised fraction of gene ``g`` in the control cells, ``q_p`` the
predicted profile and ``q0`` the prediction's control profile (the change of a
log-normalised profile is close to the log fold change of the mean); counts are negative
binomial with the genes' true dispersions (``var['dispersion']``) when the data are cells,
or dispersions estimated from the control samples otherwise. The observed training-control
cells are included unchanged (label: the control), so DE-based metrics compare predicted
cells with the controls. Profile-only predictions on raw (non-count) data get no cells.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._profiles import counts_matrix
from .._random import as_generator

__all__ = ["synthesize_cells"]


def _moment_dispersion(counts: np.ndarray, totals: np.ndarray) -> np.ndarray:
    s = totals / max(totals.mean(), 1e-12)
    y = counts / s[:, None]
    m = y.mean(axis=0)
    v = y.var(axis=0, ddof=1) if y.shape[0] > 1 else np.zeros_like(m)
    poisson_part = (counts / (s[:, None] ** 2)).mean(axis=0)
    return np.clip(np.divide(v - poisson_part, m * m, out=np.zeros_like(m), where=m > 0), 0.0, 1e3)


def synthesize_cells(ctx, prediction, *, rng=None):
    """Draw count cells whose profile follows ``prediction`` (see the module notes).

    Parameters
    ----------
    ctx : Context
        The context of the ``make`` call.
    prediction : Prediction
        Profiles (test perturbations x genes) and the control profile they assume.
    rng : None, int, SeedSequence or Generator

    Returns
    -------
    AnnData or None
        CSR int64 counts; ``obs['perturbation']`` (control first), ``obs['is_control']``;
        None for raw data.
    """
    if ctx.representation == "raw":
        return None
    gen = as_generator(rng)
    adata = ctx.adata
    labels = adata.obs["perturbation"].astype(str).to_numpy()
    ctrl_rows = np.flatnonzero(labels == ctx.split.control)
    X = counts_matrix(adata)
    ctrl = X[ctrl_rows]
    ctrl = ctrl.toarray() if sp.issparse(ctrl) else np.asarray(ctrl)
    ctrl = ctrl.astype(np.float64)
    totals = ctrl.sum(axis=1)
    frac = (ctrl / np.maximum(totals, 1.0)[:, None]).mean(axis=0)
    pseudobulk = "n_cells" in adata.obs
    if "dispersion" in adata.var and not pseudobulk:
        phi = np.asarray(adata.var["dispersion"], dtype=float)
    else:
        phi = _moment_dispersion(ctrl, totals)
    q = prediction.profiles.to_numpy(dtype=float)
    q0 = prediction.control.to_numpy(dtype=float)
    w = frac[None, :] * np.exp(q - q0[None, :])
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    counts_per = pd.Series(labels).value_counts()
    n_cells = np.array([int(counts_per.get(p, 0)) for p in prediction.profiles.index], dtype=np.int64)
    rows = np.repeat(np.arange(len(n_cells)), n_cells)
    lib = gen.choice(totals, size=rows.size, replace=True)
    mu = lib[:, None] * w[rows]
    pos = phi > 0
    lam = mu.copy()
    if np.any(pos):
        shape = 1.0 / phi[pos]
        lam[:, pos] = mu[:, pos] * gen.gamma(shape[None, :], 1.0 / shape[None, :], size=(rows.size, int(pos.sum())))
    drawn = gen.poisson(lam)
    data = sp.vstack([sp.csr_matrix(ctrl.astype(np.int64)), sp.csr_matrix(drawn.astype(np.int64))]).tocsr()
    perts = list(prediction.profiles.index.astype(str))
    obs_labels = np.concatenate([np.full(ctrl_rows.size, ctx.split.control, dtype=object),
                                 np.asarray(perts, dtype=object)[rows]])
    obs = pd.DataFrame(
        {"perturbation": pd.Categorical(obs_labels, categories=[ctx.split.control] + perts),
         "is_control": obs_labels == ctx.split.control},
        index=pd.Index([f"pred{i:07d}" for i in range(obs_labels.size)]),
    )
    return ad.AnnData(X=data, obs=obs, var=pd.DataFrame(index=ctx.genes.copy()))
