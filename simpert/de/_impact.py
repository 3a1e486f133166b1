"""Transcriptome-wide impact of a perturbation (TRADE, Nadig et al. 2024).

For one perturbation, the log2 fold changes ``bhat_g`` of all genes and their standard
errors ``s_g`` are modelled as ``bhat_g ~ N(beta_g, s_g^2)`` with ``beta_g`` drawn from an
unknown distribution ``g`` estimated by adaptive shrinkage exactly as TRADE's R code does:
half-uniform mixture components, ``prior="uniform"`` (no null penalty), a point mass at
zero, components truncated to the range of the observed log2 fold changes, after dropping
genes with a non-finite estimate, standard error (or p-value, when given), ``|LFC| > 10``,
and the perturbed gene itself.

- Transcriptome-wide impact ``TI = Var_g(beta)``, the variance of the fitted prior
  (log2FC^2 units): ``sum pi_k (m_k - mbar)^2 + sum pi_k (b_k - a_k)^2 / 12``.
- Effective number of DE genes ``Me = 3 G / kappa`` with ``kappa`` the standardised fourth
  moment of the fitted prior and ``G`` the number of genes analysed (a spike-and-slab with
  normal slab on a fraction ``q`` of genes gives ``Me = q G``).

Standard error: a delete-a-group jackknife over genes. Genes are dealt into ``n_blocks``
groups by position (gene ``i`` goes to group ``i mod n_blocks``); each group is left out in
turn and the mixture weights are refitted on the remaining genes with the components held
fixed (warm-started mix-SQP on the same likelihood matrix), and
``se^2 = (B - 1)/B * sum_b (TI_(b) - mean TI_(.))^2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._validation import Instance, Integer, Interval, OneOf, check, fail
from ._ash import AshPrior, AshResult, _ash, ash_loglik_matrix
from ._mixsqp import _mixsqp, single_blas_thread

__all__ = ["ImpactResult", "ImpactSummary", "impact", "impact_table"]


@dataclass(frozen=True)
class ImpactSummary:
    """Printable summary of an :class:`ImpactResult`."""

    impact: float
    se: float
    me: float
    kappa: float
    n_genes: int
    n_excluded: int
    n_blocks: int

    def __str__(self) -> str:
        rows = [
            ("transcriptome-wide impact", f"{self.impact:.6g}"),
            ("standard error (jackknife)", f"{self.se:.6g}" if np.isfinite(self.se) else "n/a"),
            ("effective DE genes (Me)", f"{self.me:.2f}"),
            ("kurtosis of prior", f"{self.kappa:.4g}"),
            ("genes analysed", str(self.n_genes)),
            ("genes excluded", str(self.n_excluded)),
            ("jackknife blocks", str(self.n_blocks)),
        ]
        width = 48
        lines = ["Transcriptome-wide impact (TRADE)", "=" * width]
        lines += [f"{k:<30}{v:>18}" for k, v in rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()


@dataclass(frozen=True)
class ImpactResult:
    """Result of :func:`impact`.

    Attributes
    ----------
    impact : float
        Transcriptome-wide impact, the variance of the fitted effect distribution.
    se : float
        Jackknife standard error of ``impact`` (NaN when ``n_blocks=0``).
    me : float
        Effective number of DE genes, ``3 G / kappa``.
    kappa : float
        Standardised fourth moment of the fitted prior.
    mean : float
        Mean of the fitted prior.
    n_genes : int
        Genes analysed (``G``).
    n_excluded : int
        Genes dropped (non-finite, ``|LFC| > max_abs_lfc``, the target).
    fit : AshResult
        The adaptive-shrinkage fit.
    jackknife : ndarray
        Leave-one-group-out impact estimates.
    """

    impact: float
    se: float
    me: float
    kappa: float
    mean: float
    n_genes: int
    n_excluded: int
    fit: AshResult = field(repr=False)
    jackknife: np.ndarray = field(repr=False)

    def summary(self) -> ImpactSummary:
        """Return an :class:`ImpactSummary` (prints as a table)."""
        return ImpactSummary(self.impact, self.se, self.me, self.kappa, self.n_genes,
                             self.n_excluded, int(self.jackknife.size))


def _moments(prior: AshPrior) -> tuple[float, float, float]:
    var = prior.var()
    m4 = prior.fourth_moment()
    kappa = m4 / var**2 if var > 0 else float("nan")
    return prior.mean(), var, kappa


def impact(
    log2fc,
    lfc_se,
    *,
    genes=None,
    target=None,
    pvalue=None,
    max_abs_lfc: float = 10.0,
    n_blocks: int = 20,
    solver: str = "mixsqp",
) -> ImpactResult:
    """Transcriptome-wide impact of one perturbation, with a jackknife standard error.

    Parameters
    ----------
    log2fc : array_like, shape (G,)
        Estimated log2 fold changes of all genes (perturbation vs control).
    lfc_se : array_like, shape (G,)
        Their standard errors.
    genes : array_like of str, shape (G,), optional
        Gene names (needed to drop ``target``).
    target : str or sequence of str, optional
        Perturbed gene(s), left out of the analysis.
    pvalue : array_like, shape (G,), optional
        P-values; genes with a non-finite p-value are dropped, as TRADE does (DESeq2 sets
        the p-value of Cook's-distance outliers to NA).
    max_abs_lfc : float, default 10
        Genes with ``|log2fc|`` above this are dropped.
    n_blocks : int, default 20
        Jackknife groups (0 skips the standard error; otherwise at least 2).
    solver : {"mixsqp", "em"}, default "mixsqp"
        Optimiser of the mixture weights.

    Returns
    -------
    ImpactResult
        Impact, standard error, ``Me`` and the underlying fit.
    """
    check("max_abs_lfc", max_abs_lfc, Interval(0, None, closed="neither"))
    check("n_blocks", n_blocks, Integer(0))
    if n_blocks == 1:
        fail("n_blocks", "0 (no standard error) or an integer >= 2", n_blocks)
    check("solver", solver, OneOf(("mixsqp", "em")))
    with single_blas_thread():
        return _impact(log2fc, lfc_se, genes=genes, target=target, pvalue=pvalue,
                       max_abs_lfc=max_abs_lfc, n_blocks=n_blocks, solver=solver)


def _impact(log2fc, lfc_se, *, genes, target, pvalue, max_abs_lfc, n_blocks, solver) -> ImpactResult:
    """:func:`impact` without the option checks and thread control."""
    b = np.asarray(log2fc, dtype=np.float64)
    s = np.asarray(lfc_se, dtype=np.float64)
    if b.ndim != 1:
        fail("log2fc", "a 1-d array", b)
    if s.shape != b.shape:
        fail("lfc_se", f"an array of the same length as log2fc ({b.size})", s)
    keep = np.isfinite(b) & np.isfinite(s) & (s > 0)
    if pvalue is not None:
        p = np.asarray(pvalue, dtype=np.float64)
        if p.shape != b.shape:
            fail("pvalue", f"an array of the same length as log2fc ({b.size})", p)
        keep &= np.isfinite(p)
    with np.errstate(invalid="ignore"):
        keep &= ~(np.abs(b) > max_abs_lfc)
    if target is not None:
        if genes is None:
            fail("genes", "gene names when 'target' is given", genes)
        g = np.asarray(genes).astype(str)
        if g.shape != b.shape:
            fail("genes", f"an array of the same length as log2fc ({b.size})", g)
        targets = [target] if isinstance(target, str) else list(target)
        keep &= ~np.isin(g, np.asarray(targets, dtype=str))
    if keep.sum() < 2:
        fail("log2fc", "at least 2 genes with finite estimates after exclusions", b)
    bk, sk = b[keep], s[keep]
    grange = (float(bk.min()), float(bk.max()))
    fit = _ash(bk, sk, mixcompdist="halfuniform", prior="uniform", pointmass=True, nullweight=10.0,
               grid=None, mult=np.sqrt(2.0), grange=grange, solver=solver, tol=1e-8,
               max_iter=None, x0=None)
    mean, var, kappa = _moments(fit.prior)
    G = int(bk.size)
    me = 3.0 * G / kappa if np.isfinite(kappa) and kappa > 0 else float("nan")

    jk = np.empty(0)
    se = float("nan")
    if n_blocks:
        B = min(n_blocks, G)
        logL = ash_loglik_matrix(bk, sk, fit.prior)
        L = np.exp(logL - logL.max(axis=1, keepdims=True))
        live = L.max(axis=0) > 0
        L = L[:, live]
        pen = fit.penalty[live]
        x0 = fit.pi[live]
        block = np.arange(G) % B
        jk = np.empty(B)
        for j in range(B):  # B refits on row subsets (vectorised over genes)
            rows = block != j
            sub = _mixsqp(L[rows], prior=pen, x0=x0)
            pi = np.zeros(fit.pi.size)
            pi[live] = sub.x
            jk[j] = AshPrior(fit.prior.kind, pi, a=fit.prior.a, b=fit.prior.b).var()
        se = float(np.sqrt((B - 1) / B * np.sum((jk - jk.mean()) ** 2)))
    return ImpactResult(impact=float(var), se=se, me=float(me), kappa=float(kappa), mean=float(mean),
                        n_genes=G, n_excluded=int(b.size - G), fit=fit, jackknife=jk)


def impact_table(
    de_table,
    *,
    targets=None,
    lfc: str = "log2fc",
    se: str = "lfc_se",
    by: str = "perturbation",
    gene: str = "gene",
    max_abs_lfc: float = 10.0,
    n_blocks: int = 20,
) -> pd.DataFrame:
    """Transcriptome-wide impact for every perturbation of a DE table.

    Parameters
    ----------
    de_table : DataFrame
        Tidy DE results (one row per perturbation x gene) with columns ``by``, ``gene``,
        ``lfc`` and ``se`` (simpert's schema: ``perturbation``, ``gene``, ``log2fc``,
        ``lfc_se``); a ``pvalue`` column, when present, is used to drop NA genes as TRADE does.
    targets : mapping or Series, optional
        Perturbation -> perturbed gene (left out). Default: the table's ``target`` column when
        present, else none.
    lfc, se, by, gene : str
        Column names.
    max_abs_lfc : float, default 10
        Genes with a larger ``|log2fc|`` are dropped.
    n_blocks : int, default 20
        Jackknife groups for the standard error (0 skips it).

    Returns
    -------
    DataFrame
        Columns ``perturbation``, ``impact``, ``se``, ``me``, ``kappa``, ``n_genes``, one row
        per perturbation in order of first appearance.
    """
    check("de_table", de_table, Instance((pd.DataFrame,), label="a pandas DataFrame"))
    for col in (by, gene, lfc, se):
        if col not in de_table.columns:
            fail("de_table", f"a DataFrame with a column {col!r}", list(de_table.columns))
    if targets is None and "target" in de_table.columns:
        targets = de_table.groupby(by, sort=False, observed=True)["target"].first()
    if targets is not None and not hasattr(targets, "get"):
        fail("targets", "a mapping or Series perturbation -> target gene", targets)
    has_p = "pvalue" in de_table.columns
    rows = []
    for pert, sub in de_table.groupby(by, sort=False, observed=True):
        tgt = None if targets is None else targets.get(pert)
        if tgt is not None and (not isinstance(tgt, str) or tgt == ""):
            tgt = None if not isinstance(tgt, (list, tuple)) else tgt
        res = impact(sub[lfc].to_numpy(), sub[se].to_numpy(), genes=sub[gene].astype(str).to_numpy(),
                     target=tgt, pvalue=sub["pvalue"].to_numpy() if has_p else None,
                     max_abs_lfc=max_abs_lfc, n_blocks=n_blocks)
        rows.append({"perturbation": pert, "impact": res.impact, "se": res.se, "me": res.me,
                     "kappa": res.kappa, "n_genes": res.n_genes})
    return pd.DataFrame(rows, columns=["perturbation", "impact", "se", "me", "kappa", "n_genes"])
