"""Expected squared error over the top-k genes selected by |observed LFC|.

PEREGGRN's ``mse_top_n`` sums squared errors over the ``k`` genes with the largest
``|observed LFC|``. The observed LFC ``o = Zbar - Ybar`` shares the control noise with the
control-mean prediction, so selecting genes on ``|o|`` picks genes whose control noise is
large, which inflates the error of the control baseline more than that of the mean baseline.

Derivation (genes independent, Gaussian noise). For a predictor with error ``e = o - p``,
``(o_g, e_g)`` is bivariate normal per gene, and gene ``g`` is among the top ``k`` iff fewer than
``k`` of the other genes have ``|o_j| > |o_g|``. Conditioning on ``o_g``:

    E[sum_{g in top k} e_g^2] = sum_g  int  phi_g(o) E[e_g^2 | o] pi_g(|o|) do,
    E[e^2 | o] = (mu_e + (c/v_o)(o - mu_o))^2 + v_e - c^2/v_o,
    pi_g(t) = P(#{j != g : |o_j| > t} <= k - 1),

where ``#{...}`` is a Poisson-binomial count with success probabilities
``q_j(t) = P(|o_j| > t)``. The integral over ``t = |o| >= 0`` is done by composite
Gauss-Legendre quadrature on a grid fine relative to the smallest noise scale; at every node
the leave-one-out count distributions of all genes come from one product tree of truncated
generating polynomials (up pass, then a down pass multiplying each node's complement), which
is exact, division-free and vectorised over genes and nodes (cost ``O(k log(k) G T)`` for
``T`` nodes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._validation import Instance, Integer, check, fail
from ._bias_variance import baseline_mse
from ._genes import gene_arrays
from ._table import TheorySummary

__all__ = ["TopKMSE", "topk_mse", "loo_count_cdf"]

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)


def _pmul(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Product of generating polynomials (coefficients on the last axis), truncated to k terms.

    The loop runs over the coefficients of the shorter factor, so low levels of the
    product tree (short polynomials) cost little.
    """
    if a.shape[-1] < b.shape[-1]:
        a, b = b, a
    la, lb = a.shape[-1], b.shape[-1]
    n = min(k, la + lb - 1)
    shape = np.broadcast_shapes(a.shape[:-1], b.shape[:-1]) + (n,)
    out = np.zeros(shape)
    for i in range(min(lb, n)):
        span = min(la, n - i)
        out[..., i : i + span] += a[..., :span] * b[..., i : i + 1]
    return out


def _pad_leaves(leaves: np.ndarray) -> np.ndarray:
    """Pad the leaf axis (1) to a power of two with the unit polynomial."""
    u = leaves.shape[1]
    size = 1 << int(np.ceil(np.log2(max(u, 1))))
    if size == u:
        return leaves
    pad = np.zeros((leaves.shape[0], size - u, leaves.shape[2]))
    pad[:, :, 0] = 1.0
    return np.concatenate([leaves, pad], axis=1)


def _up(leaves: np.ndarray, k: int) -> list[np.ndarray]:
    levels = [_pad_leaves(leaves)]
    while levels[-1].shape[1] > 1:
        cur = levels[-1]
        levels.append(_pmul(cur[:, 0::2], cur[:, 1::2], k))
    return levels


def _complements(levels: list[np.ndarray], k: int) -> np.ndarray:
    """Down pass: for every leaf, the product of all other leaves (truncated to k terms)."""
    out = np.ones((levels[0].shape[0], 1, 1))
    for lvl in range(len(levels) - 2, -1, -1):
        nodes = levels[lvl]
        left = _pmul(out, nodes[:, 1::2], k)
        child = np.empty(left.shape[:1] + (nodes.shape[1],) + left.shape[2:])
        child[:, 0::2] = left
        child[:, 1::2] = _pmul(out, nodes[:, 0::2], k)
        out = child
    return out


def _binom_leaves(q: np.ndarray, counts: np.ndarray, length: int) -> np.ndarray:
    """Binomial(counts_u, q_tu) pmfs at 0..length-1: shape (T, U, length)."""
    j = np.arange(length)[None, None, :]
    return stats.binom.pmf(j, counts[None, :, None], q[:, :, None])


def _group_loo_cdf(q: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    """``P(#{others exceeding} <= k-1)`` for one gene of each group of identical genes.

    ``q``: (T, U) success probability per group; ``counts``: (U,) group sizes. The count
    over the other genes is the sum of Binomial(n_v, q_v) over the other groups plus
    Binomial(n_u - 1, q_u) over the gene's own group.
    """
    length = int(min(k, counts.max() + 1))
    leaves = _binom_leaves(q, counts, length)
    own = _binom_leaves(q, counts - 1, length)
    comp = _complements(_up(leaves, k), k)[:, : q.shape[1]]
    return np.clip(_pmul(comp, own, k).sum(axis=-1), 0.0, 1.0)


def _group_root_cdf(q: np.ndarray, counts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``P(N <= k-1)`` and ``P(N <= k)`` for the count over all genes."""
    length = int(min(k + 1, counts.max() + 1))
    root = _up(_binom_leaves(q, counts, length), k + 1)[-1][:, 0, :]
    cum = np.cumsum(root, axis=-1)
    c0 = cum[:, k - 1] if cum.shape[1] > k - 1 else np.ones(q.shape[0])
    c1 = cum[:, k] if cum.shape[1] > k else np.ones(q.shape[0])
    return np.clip(c0, 0.0, 1.0), np.clip(c1, 0.0, 1.0)


def loo_count_cdf(q, k: int) -> np.ndarray:
    """Leave-one-out Poisson-binomial CDF: ``P(#{j != g : B_j = 1} <= k - 1)`` for every ``g``.

    Parameters
    ----------
    q : array-like, shape (..., G)
        Success probabilities of independent Bernoulli variables ``B_j`` (last axis: genes).
    k : int
        The count threshold (``>= 1``).

    Returns
    -------
    ndarray, shape (..., G)

    Notes
    -----
    Computed with a product tree of generating polynomials truncated to degree ``k - 1``:
    the up pass multiplies sibling nodes, the down pass gives every node the product of
    everything outside it, so each leaf receives the product over all other genes without
    any division (all terms are non-negative: no cancellation). Cost ``O(G k log k)`` per
    row.
    """
    q = np.asarray(q, dtype=float)
    check("k", k, Integer(1))
    lead, g = q.shape[:-1], q.shape[-1]
    if k >= g:
        return np.ones_like(q)
    out = _group_loo_cdf(q.reshape(-1, g), np.ones(g, dtype=np.int64), k)
    return out.reshape(*lead, g)


@dataclass(frozen=True)
class TopKMSE:
    """Expected sum of squared errors over the top-k genes, for both baselines.

    Attributes
    ----------
    control, mean : float
        Expected sum over the selected genes of the squared error of the control-mean /
        all-training-mean prediction.
    control_all, mean_all : float
        The same over all genes (from :func:`baseline_mse`), for comparison.
    selection_prob : ndarray, shape (G,)
        Probability that each gene is among the top ``k`` (sums to ``k``).
    k : int
    params : dict
    """

    control: float
    mean: float
    control_all: float
    mean_all: float
    selection_prob: np.ndarray
    k: int
    params: dict

    def summary(self) -> TheorySummary:
        """Top-k and all-gene expected errors of both baselines."""
        tab = pd.DataFrame(
            {f"E[SSE] top {self.k}": [self.control, self.mean],
             f"per gene, top {self.k}": [self.control / self.k, self.mean / self.k],
             "per gene, all genes": [self.control_all / self.selection_prob.size,
                                     self.mean_all / self.selection_prob.size]},
            index=pd.Index(["control mean", "all-training mean"], name="baseline"),
        )
        p = self.params
        notes = (
            f"C={p['n_controls']}, N={p['n_perturbed']}, m={p['m']}, "
            f"controls_in_train={p['controls_in_train']}, G={self.selection_prob.size}",
            "genes selected by |Zbar - Ybar|; Gaussian noise; numerical integration "
            "(Gauss-Legendre) with exact leave-one-out Poisson-binomial selection probabilities",
        )
        return TheorySummary(f"Squared error over the top {self.k} genes", tab, notes)


def _exceed(t: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``P(|o_g| > t)`` for ``o_g ~ N(mu_g, sd_g^2)``: rows t, columns genes."""
    t = t[:, None]
    return stats.norm.sf((t - mu) / sd) + stats.norm.cdf((-t - mu) / sd)


def _nodes(mu: np.ndarray, sd: np.ndarray, counts: np.ndarray, k: int,
           max_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes on [0, t_max], panels refined where the selection switches on.

    ``mu``, ``sd``: per group of identical genes, ``counts`` their sizes. Start from panels
    one smallest SD wide; bisect every panel across which the all-gene count CDFs
    ``P(N <= k-1)`` or ``P(N <= k)`` change by more than 0.05 (every leave-one-out
    selection probability lies between them), until none does.
    """
    t_max = float(np.max(np.abs(mu) + 12.0 * sd))
    n_panels = int(np.ceil(t_max / float(np.min(sd))))
    n_panels = max(1, min(n_panels, max_nodes // (2 * _GL_NODES.size)))
    edges = np.linspace(0.0, t_max, n_panels + 1)
    c0, c1 = _group_root_cdf(_exceed(edges, mu, sd), counts, k)
    for _ in range(40):
        split = (np.abs(np.diff(c0)) > 0.05) | (np.abs(np.diff(c1)) > 0.05)
        if not split.any() or (edges.size + split.sum()) * _GL_NODES.size > max_nodes:
            break
        mids = (edges[:-1][split] + edges[1:][split]) / 2.0
        m0, m1 = _group_root_cdf(_exceed(mids, mu, sd), counts, k)
        order = np.argsort(np.r_[edges, mids], kind="stable")
        edges = np.r_[edges, mids][order]
        c0, c1 = np.r_[c0, m0][order], np.r_[c1, m1][order]
    half = np.diff(edges) / 2.0
    mid = (edges[:-1] + edges[1:]) / 2.0
    t = (mid[:, None] + half[:, None] * _GL_NODES[None, :]).ravel()
    wt = (half[:, None] * _GL_WEIGHTS[None, :]).ravel()
    return t, wt


def _selection(t: np.ndarray, mu: np.ndarray, sd: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    """``pi_u(t)`` at every node (rows) for a gene of each group (columns).

    Nodes where ``P(N_all <= k) < 1e-14`` (``pi = 0``) or ``P(N_all <= k-1) > 1 - 1e-14``
    (``pi = 1``) skip the leave-one-out product tree, since
    ``P(N_all <= k-1) <= pi_g(t) <= P(N_all <= k)``.
    """
    u = mu.size
    size = 1 << int(np.ceil(np.log2(max(u, 1))))
    chunk = max(1, int(2e6 // (size * k)))
    pi = np.zeros((t.size, u))
    for start in range(0, t.size, chunk):
        q = _exceed(t[start : start + chunk], mu, sd)
        c0, c1 = _group_root_cdf(q, counts, k)
        block = np.broadcast_to((c0 > 1.0 - 1e-14)[:, None], q.shape).astype(float)
        band = (c1 >= 1e-14) & (c0 <= 1.0 - 1e-14)
        if band.any():
            block[band] = _group_loo_cdf(q[band], counts, k)
        pi[start : start + chunk] = block
    return pi


def topk_mse(
    d_test,
    d_train_mean=0.0,
    *,
    k: int,
    noise_var=1.0,
    n_controls: int = 1,
    n_perturbed: int = 49,
    m: int = 1,
    controls_in_train: bool = True,
    max_nodes: int = 20000,
) -> TopKMSE:
    """Expected squared error summed over the ``k`` genes with the largest |observed LFC|.

    Model of :func:`baseline_mse` with Gaussian noise. Per gene the observed LFC
    ``o = Zbar - Ybar`` has mean ``D_G`` and variance ``v_o = s^2 (1/m + 1/C)``. The error
    ``e = o - p`` of each prediction is jointly normal with ``o``:

    - control mean (``p = 0``): ``e = o``;
    - all-training mean with the controls (``w = N/(C+N)``): mean ``D_G - w Dbar``,
      variance ``s^2 (1/m + 1/(C+N))``, ``Cov(o, e) = s^2 (1/m + 1/(C+N))``;
    - all-training mean without the controls: mean ``D_G - Dbar``, variance
      ``s^2 (1/m + 1/N)``, ``Cov(o, e) = s^2/m``.

    Then ``E[sum_{top k} e^2] = sum_g int phi_g(o) E[e_g^2 | o] pi_g(|o|) do`` with
    ``pi_g(t)`` the probability that fewer than ``k`` other genes exceed ``t`` in absolute
    observed LFC (see the module notes), integrated numerically.

    Parameters
    ----------
    d_test : float or array-like, shape (G,)
        True effect of the held-out perturbation per gene; a scalar needs a per-gene
        array among the other inputs to fix ``G``.
    d_train_mean : float or array-like, shape (G,), default 0
        Mean true effect of the perturbed training samples.
    k : int
        Number of genes selected (1 <= k <= G).
    noise_var : float or array-like, shape (G,), default 1
    n_controls, n_perturbed, m : int
        ``C``, ``N`` and the held-out replicates.
    controls_in_train : bool, default True
    max_nodes : int, default 20000
        Cap on the quadrature nodes. The grid is 8-point Gauss-Legendre panels, at most
        half the smallest observed-LFC standard deviation wide, up to 12 SD past the
        largest mean, bisected where the selection probability switches on (see notes).

    Returns
    -------
    TopKMSE

    Notes
    -----
    Assumptions: Gaussian noise independent across samples and genes; effects fixed; ties
    have probability zero. Accuracy is limited only by the quadrature; panels are bisected
    until the all-gene count CDFs ``P(N <= k-1)`` and ``P(N <= k)`` (which bracket every
    ``pi_g``) change by at most 0.05 across a panel, and ``selection_prob`` summing to ``k``
    is a check of the grid. Cost: ``O(k log(k) G)`` per node inside the transition band,
    ``O(k G)`` elsewhere.
    """
    check("k", k, Integer(1))
    check("max_nodes", max_nodes, Integer(16))
    check("controls_in_train", controls_in_train, Instance((bool,), "True or False"))
    full = baseline_mse(d_test, d_train_mean, noise_var=noise_var, n_controls=n_controls,
                        n_perturbed=n_perturbed, m=m, controls_in_train=controls_in_train)
    d_g, dbar, s2 = gene_arrays(("noise_var",), d_test=d_test, d_train_mean=d_train_mean,
                                noise_var=noise_var)
    g = d_g.size
    if k > g:
        fail("k", f"an integer in [1, {g}] (the number of genes)", k)
    c, n = n_controls, n_perturbed
    mu_o, v_o = d_g, s2 * (1.0 / m + 1.0 / c)
    sd_o = np.sqrt(v_o)
    if controls_in_train:
        w = n / (c + n)
        mean_err = (d_g - w * dbar, s2 * (1.0 / m + 1.0 / (c + n)), s2 * (1.0 / m + 1.0 / (c + n)))
    else:
        mean_err = (d_g - dbar, s2 * (1.0 / m + 1.0 / n), s2 / m)
    errors = {"control": (mu_o, v_o, v_o), "mean": mean_err}

    # genes with the same observed-LFC law share their selection probability: group them
    _, first, inverse, counts = np.unique(np.c_[mu_o, sd_o], axis=0, return_index=True,
                                          return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    t, wt = _nodes(mu_o[first], sd_o[first], counts, k, max_nodes)
    if k >= g:
        pi = np.ones((t.size, g))
    else:
        pi = _selection(t, mu_o[first], sd_o[first], counts, k)[:, inverse]
    tc, wc = t[:, None], wt[:, None]
    zp, zm = (tc - mu_o) / sd_o, (-tc - mu_o) / sd_o
    dens_p, dens_m = stats.norm.pdf(zp) / sd_o, stats.norm.pdf(zm) / sd_o
    sel = np.sum(wc * (dens_p + dens_m) * pi, axis=0)
    totals = {}
    for name, (mu_e, v_e, cov) in errors.items():
        slope = cov / v_o
        resid = v_e - cov * slope
        h_p = (mu_e + slope * (tc - mu_o)) ** 2 + resid
        h_m = (mu_e + slope * (-tc - mu_o)) ** 2 + resid
        totals[name] = float(np.sum(wc * (dens_p * h_p + dens_m * h_m) * pi))
    return TopKMSE(
        control=totals["control"], mean=totals["mean"], control_all=full.control_total,
        mean_all=full.mean_total, selection_prob=sel, k=int(k),
        params=dict(n_controls=c, n_perturbed=n, m=m, controls_in_train=controls_in_train),
    )
