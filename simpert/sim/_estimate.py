"""Fit screen parameters from a user's counts, so simulations can be shaped like real data.

Estimators (cells x genes integer counts with a control label):

- size factors ``s_c = total_c / geometric mean of the control totals`` (so the fitted base
  means are at a geometric-mean-one size factor, i.e. ``library_loc = 0``);
- base means ``mu_g``: mean of ``y / s`` over control cells; their gamma law by maximum
  likelihood (``mean_shape``, ``mean_scale``); the vector itself goes to ``gene_means``;
- dispersion trend: with ``z = y / s``, ``Var(z) = mu E[1/s] + a1 mu + a0 mu^2`` under the
  model, so the excess variance ``var_g(z) - m_g mean(1/s)`` is regressed on ``(m_g, m_g^2)``
  without intercept, by iteratively reweighted least squares (weights ``1 / Var`` of the
  sample variance under the fitted model) with large standardised residuals down-weighted,
  on genes with at least 400 counts over the controls (noisy means of rarer genes bias
  the fit: errors in variables);
- library-size law: ``library_sd^2 = Var(log total) - E[Var(log total | s)]`` over controls,
  the count-noise part computed from the fitted means and dispersions (delta method);
- shared shift: split the perturbations and the controls each into two halves and compute
  per gene ``delta_h = log2 mean(perturbed, half h) - log2 mean(controls, half h)``; the
  covariance across genes of ``delta_1`` and ``delta_2`` estimates ``Var_g(B d_g) =
  B^2 systematic_sd^2`` (specific effects and sampling noise are independent between
  halves), so ``B = sqrt(cov) / systematic_sd``;
- effect sparsity: per perturbation and gene, a z-test of the normalised mean against the
  controls shifted by the shared response (per gene, the median over perturbations of the
  log2 ratio); ``p_effect = 1 - pi0`` with Storey's pi0
  (lambda = 0.5). Low power at low counts makes this a lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.stats as st

from .._profiles import counts_matrix
from .._validation import Instance, Interval, check, fail
from ._params import ScreenParams

__all__ = ["estimate_params", "fit_screen", "ScreenFit", "FitSummary"]


class FitSummary:
    """A printable table of fitted values (``str()`` / ``repr()`` render it).

    Attributes
    ----------
    table : DataFrame
        Columns ``quantity``, ``estimate``, ``note``.
    """

    def __init__(self, table: pd.DataFrame, title: str):
        self.table = table
        self.title = title

    def __str__(self) -> str:
        body = self.table.to_string(index=False)
        width = max(len(line) for line in body.splitlines())
        return f"{self.title}\n{'=' * width}\n{body}\n{'=' * width}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<h4>{self.title}</h4>" + self.table.to_html(index=False)


@dataclass(frozen=True)
class ScreenFit:
    """Result of :func:`fit_screen`.

    Attributes
    ----------
    params : ScreenParams
        Parameters for :func:`simpert.sim.screen` shaped like the data.
    gene_means : Series
        Fitted base means per gene.
    dispersion_trend : tuple of float
        ``(a0, a1)``.
    gene_dispersion : Series
        Method-of-moments dispersion per gene (NaN where undefined).
    library_log_mean, library_log_sd_total : float
        Mean and SD of the log total counts of control cells (SD before removing count noise).
    library_sd : float
        SD of the log size factors (count noise removed).
    systematic_strength, systematic_cov : float
        ``B`` and the split-half covariance it comes from.
    shared_log2fc : Series
        Per-gene estimate of the shared response ``B d_g`` (mean of both halves).
    p_effect, pi0 : float
    n_genes_used : dict
        Genes used by each estimator.
    """

    params: ScreenParams
    gene_means: pd.Series
    dispersion_trend: tuple
    gene_dispersion: pd.Series
    library_log_mean: float
    library_log_sd_total: float
    library_sd: float
    systematic_strength: float
    systematic_cov: float
    shared_log2fc: pd.Series
    p_effect: float
    pi0: float
    n_genes_used: dict = field(default_factory=dict)

    def summary(self) -> FitSummary:
        """Table of the fitted quantities.

        Returns
        -------
        FitSummary
        """
        p = self.params
        rows = [
            ("n_genes", p.n_genes, "genes"),
            ("n_control_cells", p.n_control_cells, "control cells"),
            ("n_perturbations", p.n_perturbations, "perturbations"),
            ("cells_per_perturbation", round(p.cells_per_perturbation, 3), "mean cells per perturbation"),
            ("cell_count_dispersion", round(p.cell_count_dispersion, 4), "NB dispersion of cells per perturbation"),
            ("mean_shape", round(p.mean_shape, 4), "gamma law of base means (ML)"),
            ("mean_scale", round(p.mean_scale, 4), ""),
            ("dispersion_a0", round(self.dispersion_trend[0], 5), f"trend a0 + a1/mu, {self.n_genes_used.get('dispersion', 0)} genes"),
            ("dispersion_a1", round(self.dispersion_trend[1], 5), ""),
            ("library_log_mean", round(self.library_log_mean, 4), "mean log total counts (controls)"),
            ("library_sd", round(self.library_sd, 4), f"SD log size factor (raw SD {self.library_log_sd_total:.4f})"),
            ("systematic_strength", round(self.systematic_strength, 4),
             f"B at systematic_sd = {p.systematic_sd:g}; split-half cov {self.systematic_cov:.3g}"),
            ("p_effect", round(self.p_effect, 4), f"1 - Storey pi0 ({self.n_genes_used.get('p_effect', 0)} genes)"),
        ]
        return FitSummary(pd.DataFrame(rows, columns=["quantity", "estimate", "note"]), "simpert screen fit")


def _controls(adata, control):
    obs = adata.obs
    if "is_control" in obs:
        return obs["is_control"].to_numpy(dtype=bool)
    if "perturbation" not in obs:
        fail("adata", "an AnnData with obs['perturbation'] or obs['is_control']", list(obs.columns))
    return obs["perturbation"].astype(str).to_numpy() == str(control)


def _dispersion_trend(m, v, inv_s, n):
    """IRLS fit of v - m inv_s = a1 m + a0 m^2 (weights 1 / Var(sample variance))."""
    excess = v - m * inv_s
    # genes with few counts have noisy means, and the noise of m and v is correlated
    # (errors in variables): keep genes with at least 400 counts over the controls
    ok = (m * n >= 400) & np.isfinite(v)
    if ok.sum() < 10:
        ok = (m > 0) & np.isfinite(v)
    X = np.column_stack([m, m**2])[ok]
    y = excess[ok]
    mm = m[ok]
    a0, a1 = 0.1, 0.1
    w_rob = np.ones(y.size)
    for _ in range(8):
        V = mm * inv_s + a1 * mm + a0 * mm**2
        var_v = 2.0 * V**2 / (n - 1)
        w = w_rob / var_v
        sw = np.sqrt(w)
        coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
        a1, a0 = max(coef[0], 0.0), max(coef[1], 0.0)
        r = (y - X @ np.array([a1, a0])) / np.sqrt(var_v)
        # down-weight outlying genes (Huber-type, c = 4)
        w_rob = np.minimum(1.0, 4.0 / np.maximum(np.abs(r), 1e-12))
    return a0, a1, int(ok.sum())


def fit_screen(adata, *, control: str | None = None, systematic_sd: float | None = None,
               min_mean: float = 0.5, layer: str | None = None) -> ScreenFit:
    """Fit :class:`ScreenParams` to a screen's cell-level counts (see the module notes).

    Parameters
    ----------
    adata : AnnData
        Cells x genes integer counts; ``obs['perturbation']`` (and optionally
        ``is_control``, ``target``, ``replicate``).
    control : str or None
        Control label; default ``uns['simpert']['control']`` or "control".
    systematic_sd : float or None
        SD of the shared-response direction the strength B is expressed against; default
        that of ``ScreenParams()``.
    min_mean : float, default 0.5
        Genes with fitted base mean below this are left out of the shared-shift and
        effect-sparsity estimators.
    layer : str or None
        Count layer; default ``layers['counts']`` if present, else ``.X``.

    Returns
    -------
    ScreenFit
    """
    import anndata as ad

    check("adata", adata, Instance((ad.AnnData,), "an AnnData"))
    check("min_mean", min_mean, Interval(0, None, "neither"))
    if systematic_sd is None:
        systematic_sd = ScreenParams().systematic_sd
    check("systematic_sd", systematic_sd, Interval(0, None, "neither"))
    if control is None:
        control = str(adata.uns.get("simpert", {}).get("control", "control")) if isinstance(
            adata.uns.get("simpert", None), dict) else "control"
    X = counts_matrix(adata) if layer is None else adata.layers[layer]
    X = sp.csr_matrix(X, dtype=np.float64)
    if X.nnz and (np.any(X.data < 0) or not np.all(X.data == np.round(X.data))):
        fail("adata", "an AnnData with non-negative integer counts", "negative or non-integer values")
    is_ctrl = _controls(adata, control)
    n_ctrl = int(is_ctrl.sum())
    if n_ctrl < 3:
        fail("adata", "an AnnData with at least 3 control cells", f"{n_ctrl} control cells (label {control!r})")
    G = X.shape[1]
    totals = np.asarray(X.sum(axis=1)).ravel()
    if np.any(totals[is_ctrl] <= 0):
        fail("adata", "control cells with positive total counts", "a control cell with zero counts")
    log_tot = np.log(np.maximum(totals, 1.0))
    gm = float(np.mean(log_tot[is_ctrl]))
    s_hat = totals / np.exp(gm)
    s_hat = np.where(s_hat > 0, s_hat, 1.0)

    Xc = X[is_ctrl]
    sc = s_hat[is_ctrl]
    Z = sp.diags(1.0 / sc) @ Xc
    m = np.asarray(Z.mean(axis=0)).ravel()
    m2 = np.asarray(Z.multiply(Z).mean(axis=0)).ravel()
    v = (m2 - m**2) * n_ctrl / (n_ctrl - 1)
    inv_s = float(np.mean(1.0 / sc))
    a0, a1, n_disp = _dispersion_trend(m, v, inv_s, n_ctrl)
    with np.errstate(divide="ignore", invalid="ignore"):
        gene_disp = np.where(m > 0, (v - m * inv_s) / m**2, np.nan)

    # library-size law: remove count noise from Var(log total)
    base = np.maximum(m, 1e-3)
    alpha = a0 + a1 / base
    M = base.sum()
    noise_var = float(np.mean(1.0 / (sc * M))) + float(np.sum(alpha * base**2) / M**2)
    raw_sd = float(np.std(log_tot[is_ctrl], ddof=1))
    lib_sd = float(np.sqrt(max(raw_sd**2 - noise_var, 0.0)))

    # gamma law of base means
    pos = m[m > 0]
    shape, _, scale = st.gamma.fit(pos, floc=0) if pos.size > 2 else (1.0, 0.0, max(float(pos.mean()), 1e-3))

    # perturbations
    obs = adata.obs
    pert = obs["perturbation"].astype(str).to_numpy() if "perturbation" in obs else np.where(is_ctrl, control, "")
    labels = [x for x in pd.unique(pert[~is_ctrl])]
    P = len(labels)
    codes = pd.Categorical(pert, categories=labels).codes
    n_cells = np.bincount(codes[codes >= 0], minlength=P).astype(float) if P else np.zeros(0)
    genes = np.asarray(adata.var_names).astype(str)
    expressed = m >= min_mean
    target_cols = np.zeros(G, dtype=bool)
    if "target" in obs:
        tg = set(obs["target"].astype(str)) - {""}
        target_cols = np.isin(genes, list(tg))
    else:
        target_cols = np.isin(genes, labels)
    use = expressed & ~target_cols

    B = 0.0
    cov = 0.0
    shared = np.zeros(G)
    p_effect, pi0, n_pe = 0.0, 1.0, 0
    if P >= 2:
        Xn = sp.diags(1.0 / s_hat) @ X
        ind = sp.csr_matrix((np.ones(int((codes >= 0).sum())), (codes[codes >= 0], np.flatnonzero(codes >= 0))),
                            shape=(P, X.shape[0]))
        pmeans = np.asarray((ind @ Xn).todense()) / n_cells[:, None]
        ctrl_idx = np.flatnonzero(is_ctrl)
        halves_c = [ctrl_idx[0::2], ctrl_idx[1::2]]
        halves_p = [np.arange(0, P, 2), np.arange(1, P, 2)]
        deltas = []
        for hc, hp in zip(halves_c, halves_p):
            cm = np.asarray(Xn[hc].mean(axis=0)).ravel()
            pm = pmeans[hp].mean(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                deltas.append(np.log2(pm) - np.log2(cm))
        d1, d2 = deltas
        ok = use & np.isfinite(d1) & np.isfinite(d2)
        if ok.sum() > 2:
            cov = float(np.cov(d1[ok], d2[ok])[0, 1])
            B = float(np.sqrt(max(cov, 0.0)) / systematic_sd)
            shared[ok] = 0.5 * (d1[ok] + d2[ok])
        # effect sparsity: z-test vs controls shifted by the shared response
        Xn2 = Xn.multiply(Xn).tocsr()
        psq = np.asarray((ind @ Xn2).todense()) / n_cells[:, None]
        pvar = np.maximum(psq - pmeans**2, 0) * n_cells[:, None] / np.maximum(n_cells[:, None] - 1, 1)
        # robust shared shift per gene: median over perturbations of the log2 ratio (a mean
        # would be pulled by the few large specific effects and make the rest look changed)
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.log2(pmeans / m[None, :])
        lr[~np.isfinite(lr)] = np.nan
        shift = np.zeros(G)
        has = use & np.any(np.isfinite(lr), axis=0)
        shift[has] = np.nanmedian(lr[:, has], axis=0)
        cmean = m * np.exp2(shift)
        se = np.sqrt(pvar / n_cells[:, None] + (v * np.exp2(2 * shift)) / n_ctrl)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (pmeans - cmean[None, :]) / se
        mask = np.broadcast_to(use, z.shape).copy()
        tgt = obs["target"].astype(str).to_numpy() if "target" in obs else pert
        first = {lab: tgt[np.flatnonzero(pert == lab)[0]] for lab in labels}
        gpos = {g: i for i, g in enumerate(genes)}
        for i, lab in enumerate(labels):
            j = gpos.get(first[lab])
            if j is not None:
                mask[i, j] = False
        zz = z[mask & np.isfinite(z)]
        if zz.size:
            pv = 2 * st.norm.sf(np.abs(zz))
            pi0 = float(min(1.0, np.mean(pv > 0.5) / 0.5))
            p_effect = 1.0 - pi0
            n_pe = int(use.sum())

    cpp = float(n_cells.mean()) if P else 100.0
    ccd = float(max((n_cells.var(ddof=1) - cpp) / cpp**2, 0.0)) if P > 1 else 0.0
    n_rep = int(obs["replicate"].nunique()) if "replicate" in obs else 1
    params = ScreenParams(
        n_genes=G,
        n_perturbations=min(P, G),
        n_control_cells=n_ctrl,
        cells_per_perturbation=max(cpp, 1e-6),
        cell_count_dispersion=ccd,
        min_cells=max(1, int(n_cells.min())) if P else 3,
        n_replicates=max(1, n_rep),
        mean_shape=float(shape),
        mean_scale=float(scale),
        gene_means=tuple(np.maximum(m, 1e-3).tolist()),
        dispersion_a0=float(a0),
        dispersion_a1=float(a1),
        library_loc=0.0,
        library_sd=min(lib_sd, 5.0),
        p_effect=float(min(max(p_effect, 0.0), 1.0)),
        systematic_strength=B,
        systematic_sd=float(systematic_sd),
        control_label=str(control),
    )
    return ScreenFit(
        params=params,
        gene_means=pd.Series(m, index=genes, name="base_mean"),
        dispersion_trend=(float(a0), float(a1)),
        gene_dispersion=pd.Series(gene_disp, index=genes, name="dispersion"),
        library_log_mean=gm,
        library_log_sd_total=raw_sd,
        library_sd=lib_sd,
        systematic_strength=B,
        systematic_cov=cov,
        shared_log2fc=pd.Series(shared, index=genes, name="shared"),
        p_effect=float(p_effect),
        pi0=float(pi0),
        n_genes_used={"dispersion": n_disp, "systematic": int(use.sum()), "p_effect": n_pe},
    )


def estimate_params(adata, **kwargs) -> ScreenParams:
    """Fit :class:`ScreenParams` to a user's counts: ``fit_screen(adata, **kwargs).params``.

    Parameters
    ----------
    adata : AnnData
        Cell-level integer counts with ``obs['perturbation']``.
    **kwargs
        Options of :func:`fit_screen` (``control``, ``systematic_sd``, ``min_mean``, ``layer``).

    Returns
    -------
    ScreenParams
        Use it with :func:`simpert.sim.screen`; call :func:`fit_screen` for the fit report.
    """
    return fit_screen(adata, **kwargs).params

