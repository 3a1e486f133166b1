"""cell-eval2's 2026 challenge suite (profile ``vcc2026``; ArcInstitute/cell-eval2 0.20.0).

Six metrics computed from raw counts, every one of them excluding each perturbation's own
target gene, and the score that places each on the scale 0 = mean-response baseline,
1 = split-half replicate:

- ``pds_cosine``: ranks the cosine distance of each predicted effect to every observed
  effect (profiles summed per group, normalised to 5e4, log1p; effects against the real
  control on both sides; all of the panel's target genes removed from every vector).
- ``expr_mse_unbiased_capped_norm``: ratio of panel sums of a squared profile distance
  corrected for sampling noise (delete-one jackknife on both sides, the prediction's
  correction capped by the real one and by its own across-perturbation spread) over the
  corrected squared distance of the observed profile to the control.
- ``de_wilcoxon_direction_fidelity_yield_raw``, ``de_wilcoxon_direction_reach_raw``,
  ``de_wilcoxon_sig_jaccard``, ``de_wilcoxon_lfc_nmae``: read two Wilcoxon DE tables (the
  prediction's and the observation's, both against the real control cells).

The options are the preset ``PROFILES["vcc2026"]`` (:mod:`simpert.metrics._profiles`).
Definitions follow the installed cell-eval2 0.20.0 source files named in each docstring;
the whole computation is vectorised over perturbations, genes and cells. Where cell-eval2
is the reference, values agree to floating-point rounding (tests/test_metrics_vcc2026.py).

Entry points: :func:`vcc2026_metrics` (per-perturbation values and aggregates of one
prediction), :func:`vcc2026_baseline` (the mean-response baseline prediction),
:func:`vcc2026_anchors` (baseline and replicate ends of the scale), :func:`vcc2026_score`
(all of it). The six metrics are also in the registry (``source="cell-eval2"``); there they
read raw counts from ``MetricInput.real_cells`` / ``pred_cells`` (``CellSet.counts``), so
``metrics.score(..., metrics=["pds_cosine", ...])`` runs them on a screen of counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import erfc

from .._validation import Instance, Integer, check, fail
from ._profiles import profile as _profile
from ._registry import Metric, register

__all__ = [
    "VCC2026_METRICS",
    "Vcc2026Result",
    "Vcc2026Score",
    "de_wilcoxon_direction_fidelity_yield_raw",
    "de_wilcoxon_direction_reach_raw",
    "de_wilcoxon_lfc_nmae",
    "de_wilcoxon_sig_jaccard",
    "expr_mse_unbiased_capped_norm",
    "pds_cosine",
    "vcc2026_anchors",
    "vcc2026_baseline",
    "vcc2026_metrics",
    "vcc2026_score",
]

#: The six scored metrics, in cell-eval2's order.
VCC2026_METRICS = (
    "pds_cosine",
    "expr_mse_unbiased_capped_norm",
    "de_wilcoxon_direction_fidelity_yield_raw",
    "de_wilcoxon_direction_reach_raw",
    "de_wilcoxon_sig_jaccard",
    "de_wilcoxon_lfc_nmae",
)
_PER_PERT = ("pds_cosine", "de_wilcoxon_direction_fidelity_yield_raw", "de_wilcoxon_direction_reach_raw",
             "de_wilcoxon_sig_jaccard", "de_wilcoxon_lfc_nmae")
_HIGHER = {"pds_cosine": True, "expr_mse_unbiased_capped_norm": False,
           "de_wilcoxon_direction_fidelity_yield_raw": True, "de_wilcoxon_direction_reach_raw": True,
           "de_wilcoxon_sig_jaccard": True, "de_wilcoxon_lfc_nmae": False}
# score clamps (cell-eval2 catalog.py / scoring.py): (low, high); a missing value scores
# the clamp floor, or the metric's own minimum where there is no floor.
_CLAMP = {"pds_cosine": (-np.inf, np.inf), "expr_mse_unbiased_capped_norm": (0.0, 1.0),
          "de_wilcoxon_direction_fidelity_yield_raw": (-np.inf, np.inf),
          "de_wilcoxon_direction_reach_raw": (-np.inf, np.inf),
          "de_wilcoxon_sig_jaccard": (-np.inf, np.inf), "de_wilcoxon_lfc_nmae": (-6.0, np.inf)}
_METRIC_MIN = {"pds_cosine": 0.0, "de_wilcoxon_direction_fidelity_yield_raw": 0.0,
               "de_wilcoxon_direction_reach_raw": 0.0, "de_wilcoxon_sig_jaccard": 0.0}


# --------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class _Cells:
    """Raw counts of one side, grouped: ``X`` (cells x genes, CSR float64, no stored
    zeros), ``code`` (group index of each cell, -1 to ignore), ``labels`` (group names),
    ``ctrl`` (index of the control group)."""

    X: sp.csr_matrix
    code: np.ndarray
    labels: np.ndarray
    ctrl: int

    @property
    def n_groups(self) -> int:
        return self.labels.size

    def subset(self, rows: np.ndarray) -> _Cells:
        return _Cells(self.X[rows], self.code[rows], self.labels, self.ctrl)


def _as_counts(X, name: str, *, integral: bool) -> sp.csr_matrix:
    integral = integral and np.dtype(X.dtype).kind not in "iub"  # integer storage needs no check
    X = sp.csr_matrix(X).astype(np.float64, copy=True)
    X.sum_duplicates()
    if X.nnz and not np.all(np.isfinite(X.data)):
        fail(name, "finite counts", "a matrix with NaN or infinite entries")
    if X.nnz and X.data.min() < 0:
        fail(name, "non-negative counts", f"a matrix with minimum {X.data.min():g}")
    if integral and X.nnz and np.any(np.modf(X.data)[0] != 0):
        fail(name, "raw integer counts (vcc2026 compares summed counts; log-normalised data cannot be used)",
             "a matrix with non-integer entries")
    X.eliminate_zeros()
    X.sort_indices()
    return X


def _indicator(code: np.ndarray, n_groups: int) -> sp.csr_matrix:
    keep = np.flatnonzero(code >= 0)
    return sp.csr_matrix((np.ones(keep.size), (code[keep], keep)), shape=(n_groups, code.size))


def _group_sums(c: _Cells) -> tuple[np.ndarray, np.ndarray]:
    """Per-group count sums (n_groups, G) and cell numbers (cell-eval2 ``prep._grouped_sums``)."""
    sums = (_indicator(c.code, c.n_groups) @ c.X).toarray()
    n = np.bincount(c.code[c.code >= 0], minlength=c.n_groups)
    return sums, n


def _bulk(sums: np.ndarray, ts: float) -> np.ndarray:
    """``log1p(TS * P / sum_g P)`` per group, zero for an empty group (``prep.bulk_lognorm_means``)."""
    totals = sums.sum(axis=1)
    scale = np.zeros_like(totals)
    ok = totals > 0
    scale[ok] = ts / totals[ok]
    return np.log1p(sums * scale[:, None])


def _jackknife(c: _Cells, sums: np.ndarray, n: np.ndarray, ts: float, block: int = 1 << 18) -> np.ndarray:
    """Delete-one jackknife sampling correction ``C_p`` of each group's profile.

    ``C_p = (n-1)/n sum_g sum_i (v_ig - vbar_g)^2`` with
    ``v_ig = log1p(TS (P_pg - y_ig) / (S_p - l_i))`` (0 when the remainder is empty), 0 for
    groups of fewer than two cells or no counts, clamped at 0. Follows cell-eval2
    ``moments.jackknife_correction`` / ``_loo_bulk`` (deviations from the full-group
    profile, so the two-pass sum does not cancel digits); cells are processed in blocks of
    about ``block`` matrix entries across groups.
    """
    G = c.X.shape[1]
    out = np.zeros(c.n_groups)
    tot = sums.sum(axis=1)
    use = (n >= 2) & (tot > 0)
    if not use.any() or G == 0:
        return out
    lib = np.asarray(c.X.sum(axis=1)).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.log1p(ts * sums / np.where(tot > 0, tot, 1.0)[:, None])
    rows = np.flatnonzero((c.code >= 0) & use[np.maximum(c.code, 0)])
    rows = rows[np.argsort(c.code[rows], kind="stable")]
    s1 = np.zeros((c.n_groups, G))
    s2 = np.zeros((c.n_groups, G))
    step = max(1, block // max(G, 1))
    for s in range(0, rows.size, step):
        r = rows[s:s + step]
        g = c.code[r]
        rem = tot[g] - lib[r]
        if np.any(rem < 0):
            fail("pred", "raw counts (a cell's total cannot exceed its group's)", "a matrix that is not counts")
        safe = np.where(rem > 0, rem, 1.0)[:, None]
        V = np.log1p(ts * (sums[g] - c.X[r].toarray()) / safe)
        V = np.where((rem > 0)[:, None], V, 0.0) - b[g]
        start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        ug = g[start]
        s1[ug] += np.add.reduceat(V, start, axis=0)
        s2[ug] += np.add.reduceat(V * V, start, axis=0)
    nn = np.where(use, n, 1).astype(float)
    q = (s2 - s1 ** 2 / nn[:, None]).sum(axis=1)
    out[use] = np.maximum((nn[use] - 1) / nn[use] * q[use], 0.0)
    return out


# --------------------------------------------------------------------------- DE
def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg within each row (``scipy.stats.false_discovery_control`` arithmetic)."""
    m = p.shape[1]
    if m == 0:
        return p.copy()
    order = np.argsort(p, axis=1)  # tied p-values end with equal adjusted values in any order
    ps = np.take_along_axis(p, order, axis=1) * (m / np.arange(1, m + 1))
    ps = np.minimum.accumulate(ps[:, ::-1], axis=1)[:, ::-1]
    out = np.empty_like(ps)
    np.put_along_axis(out, order, np.clip(ps, 0, 1), axis=1)
    return out


def _mwu(L, cg: np.ndarray, n_groups: int, ref: int, block: int = 1 << 17) -> np.ndarray:
    """Two-sided Mann-Whitney U p-values of every group against group ``ref``, per gene.

    Normal approximation with tie and continuity correction, ``p = 1`` when every value
    ties (numba-mwu ``_mwu_stats_from_rank_sum``, which pdex and so cell-eval2 call on
    log1p(CPM)). Ranks come from (gene, value) slots: the reference's count per slot gives
    each cell's "below + half tied" count by lookup, and the tie term of each combined
    sample is the reference's plus corrections for the slots the group touches. Genes are
    processed in blocks of about ``block`` stored entries, which bounds the memory.
    """
    L = sp.csc_matrix(L)
    G = L.shape[1]
    out = np.empty((n_groups, G))
    ends = np.searchsorted(L.indptr, L.indptr[:-1] + block, side="right") - 1  # last column within budget
    c0 = 0
    while c0 < G:
        c1 = max(c0 + 1, min(G, int(ends[c0]), c0 + 65535))
        out[:, c0:c1] = _mwu_block(L[:, c0:c1], cg, n_groups, ref)
        c0 = c1
    out[ref] = np.nan
    return out


def _mwu_block(L, cg, n_groups, ref):
    G = L.shape[1]
    P = n_groups
    n_g = np.bincount(cg[cg >= 0], minlength=P).astype(np.int64)
    n_c = int(n_g[ref])
    coo = L.tocoo()
    grp = cg[coo.row]
    sel = grp >= 0
    j, v, grp = coo.col[sel], coo.data[sel], grp[sel]
    order = np.argsort(v)  # by value, then (stable, radix on uint16) by gene
    order = order[np.argsort(j[order].astype(np.uint16), kind="stable")]
    j, v, grp = j[order].astype(np.int64), v[order], grp[order]
    new = np.ones(j.size, dtype=bool)
    if j.size > 1:
        new[1:] = (j[1:] != j[:-1]) | (v[1:] != v[:-1])
    gid = np.cumsum(new) - 1
    d = np.bincount(j[new], minlength=G)
    first = np.cumsum(d) - d
    zero_key = first + np.arange(G)
    key = gid + j + 1
    S = int(d.sum() + G)
    gene_of_slot = np.repeat(np.arange(G), d + 1)
    is_c = grp == ref
    cc = np.bincount(key[is_c], minlength=S).astype(np.float64)
    cc[zero_key] = n_c - np.bincount(j[is_c], minlength=G)
    cum = np.cumsum(cc) - cc
    below = cum - cum[zero_key][gene_of_slot]
    ip = ~is_c
    kp, jp, gp = key[ip], j[ip], grp[ip]
    cell = gp * G + jp
    U1 = np.bincount(cell, weights=below[kp] + 0.5 * cc[kp], minlength=P * G).reshape(P, G)
    zeros_p = n_g[:, None] - np.bincount(cell, minlength=P * G).reshape(P, G)
    cc0 = cc[zero_key][None, :]
    U1 = U1 + zeros_p * 0.5 * cc0

    def f(t):
        return t * t * t - t

    tie = np.tile(np.bincount(gene_of_slot, weights=f(cc), minlength=G), (P, 1))
    if kp.size:  # each group's count in each slot it touches
        pair, cp = np.unique(kp * P + gp, return_counts=True)
        slot, gq = pair // P, pair % P
        cp = cp.astype(np.float64)
        tie += np.bincount(gq * G + gene_of_slot[slot], weights=f(cc[slot] + cp) - f(cc[slot]),
                           minlength=P * G).reshape(P, G)
    tie += f(cc0 + zeros_p) - f(cc0)
    n1 = n_g[:, None].astype(np.float64)
    n2 = float(n_c)
    nt = n1 + n2
    U = np.maximum(U1, n1 * n2 - U1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s_sq = n1 * n2 / 12.0 * ((nt + 1.0) - tie / (nt * (nt - 1.0)))
        z = (U - n1 * n2 / 2.0 - 0.5) / np.sqrt(np.where(s_sq > 0, s_sq, 1.0))
        p = 0.5 * erfc(z / np.sqrt(2.0)) * 2.0
    return np.where(s_sq > 0, np.clip(p, 0.0, 1.0), 1.0)


@dataclass(frozen=True)
class _DE:
    """One side's Wilcoxon DE against its reference group, genes outside the gate NaN.

    ``lfc``, ``p``, ``padj``: (n_groups, G); ``gate``: (G,) genes tested."""

    lfc: np.ndarray
    p: np.ndarray
    padj: np.ndarray
    gate: np.ndarray


def _de(c: _Cells, ref_cells: _Cells | None, opts: Mapping) -> _DE:
    """Wilcoxon DE of every group of ``c`` against the control cells.

    The control cells are ``ref_cells``' control group when given (the real control:
    ``control_source="real"``), else ``c``'s own. Follows cell-eval2 ``de_compute.compute_de``
    (pdex path): each cell normalised to 1e6 (scanpy ``normalize_total`` arithmetic:
    ``x / (total / 1e6)``); ``lfc = log2((mean + eps) / (mean_ctrl + eps))`` on arithmetic
    CPM means; genes kept iff the control's mean CPM > 5 (one gate for every group);
    two-sided Mann-Whitney U of log1p(CPM) against the control; Benjamini-Hochberg within
    each group over the kept genes (``_apply_cpm_filter`` / ``_bh_per_target``).
    """
    if ref_cells is not None:  # prediction's groups + the real control cells
        rc = np.flatnonzero(ref_cells.code == ref_cells.ctrl)
        X = sp.vstack([c.X, ref_cells.X[rc]], format="csr")
        code = np.concatenate([np.where(c.code == c.ctrl, -1, c.code), np.full(rc.size, c.ctrl)])
    else:
        X, code = c.X, c.code
    ts = float(opts["de_target_sum"])
    n_groups = c.n_groups
    lib = np.asarray(X.sum(axis=1)).ravel()
    fac = lib / ts
    fac = fac + (fac == 0)
    cpm = sp.csr_matrix((X.data / np.repeat(fac, np.diff(X.indptr)), X.indices, X.indptr), shape=X.shape)
    G = X.shape[1]
    del X  # the combined matrix of the prediction's side is no longer needed
    n = np.bincount(code[code >= 0], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (_indicator(code, n_groups) @ cpm).toarray() / n[:, None]
        eps = float(opts["lfc_epsilon"])
        lfc = np.log2((means + eps) / (means[c.ctrl] + eps))
    gate = means[c.ctrl] * (1e6 / ts) > float(opts["de_min_control_cpm"])
    p = np.full((n_groups, G), np.nan)
    padj = np.full((n_groups, G), np.nan)
    cols = np.flatnonzero(gate)
    if cols.size:  # genes outside the gate have few counts: testing them all is cheaper than slicing
        L = cpm.tocsc()
        del cpm
        np.log1p(L.data, out=L.data)
        pk = _mwu(L, code, n_groups, c.ctrl)[:, cols]
        p[:, cols] = pk
        others = np.arange(n_groups) != c.ctrl
        padj[np.ix_(others, cols)] = _bh(pk[others])
    lfc = np.where(gate[None, :], lfc, np.nan)
    lfc[c.ctrl] = np.nan
    # nan_lfc_policy "mask": a NaN fold change is never significant
    padj = np.where(np.isnan(lfc) & gate[None, :], 1.0, padj)
    return _DE(lfc, p, padj, gate)


# --------------------------------------------------------------------------- metrics
#: Predictions per block of the PDS distance matrix.
_PDS_BLOCK = 4096


def _pds_cosine(bulk_r, bulk_p, ref_p, rows_r, rows_p, targets, opts) -> np.ndarray:
    """PDS with the cosine distance (cell-eval2 ``metrics/discrimination.py``,
    ``distances.py``: ``exclusion_scope="panel"``, ``rank_denominator="n-1"``,
    ``tie_policy="midrank"``)."""
    real_eff = bulk_r[rows_r] - bulk_r[ref_p[0]]
    pred_eff = bulk_p[rows_p] - ref_p[1]
    panel = np.unique(targets[targets >= 0])
    keep = np.ones(real_eff.shape[1], dtype=bool)
    keep[panel] = False
    if not keep.any():
        fail("target_genes", "a panel that leaves at least one gene after removing every target gene",
             f"{panel.size} target genes out of {keep.size}")
    a, b = pred_eff[:, keep], real_eff[:, keep]
    na = np.einsum("ig,ig->i", a, a)
    nb = np.einsum("jg,jg->j", b, b)
    n = real_eff.shape[0]
    rank = np.empty(a.shape[0])
    # blockwise over predictions: _PDS_BLOCK x n distances at a time (one block up to
    # _PDS_BLOCK perturbations, so the usual sizes compute exactly the full matrix's values)
    for lo in range(0, a.shape[0], _PDS_BLOCK):
        rows = np.arange(lo, min(lo + _PDS_BLOCK, a.shape[0]))
        sim = a[rows] @ b.T
        denom = np.sqrt(na[rows])[:, None] * np.sqrt(nb)[None, :]
        cos = np.zeros_like(sim)
        nz = denom != 0
        cos[nz] = sim[nz] / denom[nz]
        dist = np.clip(1.0 - cos, 0.0, 2.0)
        own = dist[np.arange(rows.size), rows][:, None]
        less = (dist < own).sum(axis=1)
        equal = (dist == own).sum(axis=1)
        rank[rows] = less + (equal - 1) / 2.0
    D = n - 1 if opts["pds_rank_denominator"] == "n-1" else n
    return np.ones(n) if D <= 0 else 1.0 - rank / D


def _expr(bulk_r, bulk_p, C_r, C_p, ctrl_r, rows_r, rows_p, targets, opts):
    """Numerator ``N_p`` and denominator ``D_p`` of ``expr_mse_unbiased_capped_norm``.

    cell-eval2 ``metrics/delta.py`` (``_numerator`` with ``cap=True``, ``distance_unbiased``,
    ``_across_pert_budget``, ``_drop_on_target``, ``_row_weights``)::

        N_p = (||bhat_p - b_p||^2 - rho min(Chat_p, k C_p) - C_p) / G_p
        D_p = (||b_p - b_ctrl||^2 - C_p - C_ctrl) / G_p
        rho = min(1, B / sum_q min(Chat_q, k C_q) / G_q)

    both distances without the perturbation's own target gene (``G_p`` genes summed; the
    corrections stay whole), ``B`` the ``1/G_p``-weighted centred sum of squares of the
    predicted profiles across perturbations over each gene's retained rows.
    """
    pred = bulk_p[rows_p]
    real = bulk_r[rows_r]
    P, G = real.shape
    if G == 0:
        return np.full(P, np.nan), np.full(P, np.nan)
    has = targets >= 0
    tc = np.where(has, targets, 0)
    n_row = np.where(has, G - 1, G).astype(float)
    w = np.divide(1.0, n_row, out=np.zeros_like(n_row), where=n_row > 0)
    c_real = C_r[rows_r]
    term = np.minimum(C_p[rows_p], float(opts["pred_correction_cap"]) * c_real)
    claim = float((term * w).sum())
    if claim > 0.0:
        dev = pred - pred.mean(axis=0)
        s1 = w @ dev
        s2 = w @ (dev * dev)
        wsum = np.full(G, w.sum())
        cnt = np.full(G, float(P))
        k = np.flatnonzero(has)
        vk = dev[k, tc[k]]
        np.subtract.at(s1, tc[k], w[k] * vk)
        np.subtract.at(s2, tc[k], w[k] * vk * vk)
        np.subtract.at(wsum, tc[k], w[k])
        np.subtract.at(cnt, tc[k], 1.0)
        ok = (cnt >= 2.0) & (wsum > 0.0)
        budget = float(np.maximum(s2[ok] - s1[ok] ** 2 / wsum[ok], 0.0).sum()) if ok.any() else 0.0
        ratio = budget / claim
        if ratio < 1.0:
            term = term * ratio
    d = pred - real
    num = np.einsum("ij,ij->i", d, d) - term - c_real
    e = real - bulk_r[ctrl_r]
    den = np.einsum("ij,ij->i", e, e) - c_real - C_r[ctrl_r]
    rr = np.arange(P)
    num = num - np.where(has, d[rr, tc] ** 2, 0.0)
    den = den - np.where(has, e[rr, tc] ** 2, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(n_row > 0, num / n_row, np.nan), np.where(n_row > 0, den / n_row, np.nan))


def _excl_mask(shape, targets) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    k = np.flatnonzero(targets >= 0)
    m[k, targets[k]] = True
    return m


def _de_metrics(de_r: _DE, de_p: _DE, rows_r, rows_p, targets, gene_order, opts) -> dict:
    """The four ``de_wilcoxon_*`` metrics from two DE tables.

    cell-eval2 ``metrics/de.py`` (``de_sig_jaccard``, ``de_lfc_nmae``) and
    ``metrics/direction.py`` (``_direction_frame``, ``_components``, ``_fidelity_family``,
    ``_purity_curve``, ``_k_star``, ``de_direction_reach`` with ``universe="adjudicated"``,
    ``corrected=False``). A (perturbation, gene) pair is in a table when the gene passed
    that table's gate; the perturbation's own target gene is removed from both.
    """
    alpha = float(opts["fdr"])
    lr, pr_adj = de_r.lfc[rows_r], de_r.padj[rows_r]
    lp, pp, pp_adj = de_p.lfc[rows_p], de_p.p[rows_p], de_p.padj[rows_p]
    P, G = lr.shape
    excl = _excl_mask((P, G), targets)
    in_r = de_r.gate[None, :] & ~excl
    in_p = de_p.gate[None, :] & ~excl
    sig_r = in_r & (pr_adj < alpha)
    sig_p = in_p & (pp_adj < alpha)
    out = {}
    # jaccard: empty union -> 1
    inter = (sig_r & sig_p).sum(axis=1)
    union = sig_r.sum(axis=1) + sig_p.sum(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out["de_wilcoxon_sig_jaccard"] = np.where(union == 0, 1.0, inter / np.where(union == 0, 1, union))
    # lfc nmae over the real significant genes with finite real LFC; missing pred LFC -> 0
    gate = sig_r & np.isfinite(lr)
    lhat = np.where(in_p & np.isfinite(lp), lp, 0.0)
    n_gate = gate.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        num = np.where(gate, np.abs(lhat - lr), 0.0).sum(axis=1) / n_gate
        den = np.where(gate, np.abs(lr), 0.0).sum(axis=1) / n_gate
        nmae = num / den
    ok = (n_gate >= int(opts["lfc_nmae_min_gate"])) & np.isfinite(den) & (den != 0)
    out["de_wilcoxon_lfc_nmae"] = np.where(ok, nmae, np.nan)
    # direction: pairs present in both tables
    both = in_r & in_p
    defined_r = ~np.isnan(lr) & (lr != 0)
    defined_p = ~np.isnan(lp) & (lp != 0)
    match = defined_r & defined_p & (np.sign(lp) == np.sign(lr))
    called = both & (pp_adj < alpha) & defined_r
    n_pred = called.sum(axis=1)
    k = (called & match).sum(axis=1)
    n_conf = sig_r.sum(axis=1)
    mx = np.maximum(n_pred, n_conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["de_wilcoxon_direction_fidelity_yield_raw"] = np.where(mx == 0, np.nan, k / np.where(mx == 0, 1, mx))
    # reach: pool = real-significant pairs present in both tables, ordered by the
    # prediction: significant first, padj, p, |lfc| descending, gene name
    pi, gi = np.nonzero(both & (pr_adj < alpha))
    padj_k = pp_adj[pi, gi]
    sigp = padj_k < alpha
    rank_padj = np.where(np.isnan(padj_k), np.inf, padj_k)
    p_k = pp[pi, gi]
    rank_p = np.where(np.isnan(p_k), np.inf, p_k)
    a = np.abs(lp[pi, gi])
    a = np.where(np.isnan(a), -np.inf, a)
    order = np.lexsort((gene_order[gi], -a, rank_p, rank_padj, ~sigp, pi))
    pi, gi = pi[order], gi[order]
    den_c = np.cumsum(defined_r[pi, gi])
    mat_c = np.cumsum(match[pi, gi])
    start = np.r_[0, np.cumsum(np.bincount(pi, minlength=P))[:-1]]
    base_d = np.r_[0, den_c][start[pi]]
    base_m = np.r_[0, mat_c][start[pi]]
    n_den = den_c - base_d
    n_mat = mat_c - base_m
    with np.errstate(invalid="ignore", divide="ignore"):
        purity = np.where(n_den > 0, n_mat / np.where(n_den > 0, n_den, 1), np.nan)
    hit = purity >= float(opts["reach_purity_floor"])
    kstar = np.zeros(P)
    np.maximum.at(kstar, pi[hit], n_den[hit].astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["de_wilcoxon_direction_reach_raw"] = np.where(n_conf == 0, np.nan, kstar / np.where(n_conf == 0, 1, n_conf))
    return out


def _evaluate(real: _Cells, pred: _Cells, targets: np.ndarray, gene_names, opts, control_source="real",
              de_real: _DE | None = None, real_stats=None, strict: str | None = None) -> dict:
    """All six metrics of ``pred`` against ``real``; groups aligned by label.

    ``targets``: target gene column of each non-control group of ``real`` (in label
    order), -1 for none. Returns per-perturbation arrays, the expression components and the
    aggregates. With ``strict`` (a description of ``real``), a panel whose summed corrected
    effect ``sum_p D_p`` is not positive raises, as cell-eval2's ``run._derived_value`` does;
    otherwise ``expr_mse_unbiased_capped_norm`` is NaN then."""
    opts = _profile("vcc2026", None) if opts is None else opts
    ts = float(opts["profile_target_sum"])
    labels = real.labels
    non = np.flatnonzero(np.arange(labels.size) != real.ctrl)
    pred_pos = {str(p): i for i, p in enumerate(pred.labels)}
    rows_p = np.array([pred_pos[str(labels[i])] for i in non], dtype=np.int64)
    if real_stats is None:
        sums_r, n_r = _group_sums(real)
        real_stats = (_bulk(sums_r, ts), _jackknife(real, sums_r, n_r, ts))
    bulk_r, C_r = real_stats
    sums_p, n_p = _group_sums(pred)
    bulk_p = _bulk(sums_p, ts)
    C_p = _jackknife(pred, sums_p, n_p, ts)
    if control_source == "real":
        ref_vec = bulk_r[real.ctrl]
    else:
        ref_vec = bulk_p[pred.ctrl]
    out = {"pds_cosine": _pds_cosine(bulk_r, bulk_p, (real.ctrl, ref_vec), non, rows_p, targets, opts)}
    num, den = _expr(bulk_r, bulk_p, C_r, C_p, real.ctrl, non, rows_p, targets, opts)
    out["expr_mse_unbiased_capped"] = num
    out["expr_distance_unbiased"] = den
    if de_real is None:
        de_real = _de(real, None, opts)
    de_pred = _de(pred, real if control_source == "real" else None, opts)
    gene_order = np.argsort(np.argsort(np.asarray(gene_names, dtype=str), kind="stable"), kind="stable")
    out.update(_de_metrics(de_real, de_pred, non, rows_p, targets, gene_order, opts))
    fin = np.isfinite(num) & np.isfinite(den)
    agg = {m: float(np.nanmean(out[m])) if np.any(~np.isnan(out[m])) else np.nan for m in _PER_PERT}
    dsum = float(den[fin].sum())
    if strict is not None and not dsum > 0:
        fail("real", f"a panel whose summed sampling-corrected effect size is positive ({strict}; "
                     "expr_mse_unbiased_capped_norm divides by it)", f"sum of D_p = {dsum:.6g}")
    agg["expr_mse_unbiased_capped_norm"] = float(num[fin].sum()) / dsum if fin.any() and dsum > 0 else np.nan
    out["aggregate"] = agg
    out["perturbations"] = labels[non]
    out["de"] = (de_real, de_pred)
    return out


# --------------------------------------------------------------------------- AnnData front
def _resolve_targets(pert_labels, genes, target_genes) -> np.ndarray:
    """Target gene column per label: the map's gene (None: no target), else the gene of
    the same name; -1 when unresolved. Raises when nothing resolves (cell-eval2
    ``distances.resolve_exclusion_columns``)."""
    pos = {str(g): k for k, g in enumerate(genes)}
    if len(pos) != len(genes):
        fail("real", "an AnnData with unique gene names (var_names)", "duplicated gene names")
    if target_genes is not None and not isinstance(target_genes, Mapping):
        fail("target_genes", "a mapping perturbation label -> target gene (or None)", target_genes)
    tmap = {} if target_genes is None else {str(k): v for k, v in target_genes.items()}
    none_by_default = "*" in tmap and tmap["*"] is None  # {"*": None}: labels not listed have no target
    out = np.full(len(pert_labels), -1, dtype=np.int64)
    declared = 0
    for i, lab in enumerate(pert_labels):
        key = str(lab)
        entry = tmap.get(key, None if none_by_default else key)
        if entry is None:
            declared += 1
            continue
        out[i] = pos.get(str(entry), -1)
    if len(pert_labels) and not np.any(out >= 0) and not declared:
        fail("target_genes",
             "a mapping perturbation -> target gene (vcc2026 excludes each perturbation's own gene; "
             "no perturbation label is a gene name)", list(map(str, pert_labels[:5])))
    return out


def _from_anndata(adata, name, pert_col, control, layer, *, integral, max_total, genes=None):
    if not hasattr(adata, "obs") or not hasattr(adata, "var_names"):
        fail(name, "an AnnData object", adata, exc=TypeError)
    if pert_col not in adata.obs.columns:
        fail("pert_col", f"a column of {name}.obs ({', '.join(map(str, adata.obs.columns))})", pert_col)
    if layer is not None and layer not in adata.layers:
        fail("layer", f"a layer of {name} ({', '.join(adata.layers.keys()) or 'none'})", layer)
    X = adata.layers[layer] if layer is not None else adata.X
    lab = adata.obs[pert_col]
    if lab.isna().any():
        fail(pert_col, f"labels for every cell of {name}", f"{int(lab.isna().sum())} missing labels")
    lab = lab.astype(str).to_numpy()
    labels, code = np.unique(lab, return_inverse=True)
    if control not in set(labels):
        fail("control", f"a label of {name}.obs[{pert_col!r}] ({', '.join(labels[:5])}, ...)", control)
    Xc = _as_counts(X, name, integral=integral)
    if Xc.shape[0]:
        top = float(np.asarray(Xc.sum(axis=1)).max())
        if top > max_total:
            fail(name, f"raw counts with no cell total above {max_total:g}", f"a cell with {top:g} counts")
    if genes is not None:
        vn = np.asarray(adata.var_names, dtype=str)
        if vn.size != len(genes) or set(vn) != set(genes) or len(set(vn)) != vn.size:
            fail(name, f"an AnnData with the same {len(genes)} genes as 'real' (any order)",
                 f"{vn.size} genes, {len(set(vn) & set(genes))} shared")
        if not np.array_equal(vn, np.asarray(genes, dtype=str)):
            Xc = Xc[:, pd.Index(vn).get_indexer(np.asarray(genes, dtype=str))].tocsr()
            Xc.sort_indices()
    return _Cells(Xc, code.astype(np.int64).ravel(), labels.astype(object), int(np.flatnonzero(labels == control)[0]))


@dataclass(frozen=True)
class Vcc2026Result:
    """Values of the vcc2026 metrics for one prediction.

    Attributes
    ----------
    per_perturbation : DataFrame
        One row per perturbation (index, sorted labels) with the five per-perturbation
        metrics and the two components of ``expr_mse_unbiased_capped_norm``
        (``expr_mse_unbiased_capped`` = ``N_p``, ``expr_distance_unbiased`` = ``D_p``).
        NaN where a metric is undefined for that perturbation.
    aggregate : Series
        The six metrics (index :data:`VCC2026_METRICS`): the mean over defined
        perturbations, and ``sum N_p / sum D_p`` for ``expr_mse_unbiased_capped_norm``.
    """

    per_perturbation: pd.DataFrame
    aggregate: pd.Series


def _result(out) -> Vcc2026Result:
    cols = list(_PER_PERT) + ["expr_mse_unbiased_capped", "expr_distance_unbiased"]
    per = pd.DataFrame({c: out[c] for c in cols}, index=pd.Index(out["perturbations"].astype(str), name="perturbation"))
    agg = pd.Series({m: out["aggregate"][m] for m in VCC2026_METRICS}, name="value")
    return Vcc2026Result(per, agg)


def _prepare(pred, real, pert_col, control, target_genes, layer, options):
    check("pert_col", pert_col, Instance((str,), label="a str"))
    check("control", control, Instance((str,), label="a str"))
    opts = _profile("vcc2026", options)
    top = float(opts["max_counts_per_cell"])
    r = _from_anndata(real, "real", pert_col, control, layer, integral=True, max_total=top)
    genes = np.asarray(real.var_names, dtype=str)
    targets = _resolve_targets(r.labels[np.arange(r.n_groups) != r.ctrl], genes, target_genes)
    p = None
    if pred is not None:
        p = _from_anndata(pred, "pred", pert_col, control, layer,
                          integral=not opts["allow_fractional_counts"], max_total=top, genes=genes)
        if set(map(str, p.labels)) != set(map(str, r.labels)):
            only_p = sorted(set(map(str, p.labels)) - set(map(str, r.labels)))[:5]
            only_r = sorted(set(map(str, r.labels)) - set(map(str, p.labels)))[:5]
            fail("pred", f"an AnnData with the same perturbation labels as 'real' (including {control!r})",
                 f"labels only in pred {only_p}, only in real {only_r}")
    return r, p, targets, genes, opts


def vcc2026_metrics(pred, real, *, pert_col: str = "perturbation", control: str = "control",
                    target_genes: Mapping | None = None, layer: str | None = None,
                    options: Mapping | None = None) -> Vcc2026Result:
    """Evaluate a predicted screen with cell-eval2's 2026 challenge metrics.

    Parameters
    ----------
    pred, real : AnnData
        Predicted and observed cells, raw counts (``.X`` or ``layers[layer]``), with the
        perturbation label in ``obs[pert_col]``. Both carry the same labels, the control
        included; the number of cells per perturbation may differ. ``pred``'s genes may
        come in any order (they are aligned on ``real.var_names``). ``real`` must hold
        integer counts; ``pred`` must be integer too (as cell-eval2 requires of a
        submission) unless the option ``allow_fractional_counts`` is True (the baseline
        prediction of :func:`vcc2026_baseline` is fractional).
    pert_col : str, default "perturbation"
        Column of ``obs`` with the labels.
    control : str, default "control"
        Label of the control cells (e.g. "non-targeting").
    target_genes : mapping, optional
        Perturbation label -> its target gene (None: the perturbation has no target gene),
        cell-eval2's ``target_gene_map``. Labels not in the mapping target the gene of the
        same name, if there is one, or none at all when the mapping holds ``{"*": None}``.
    layer : str, optional
        Layer holding the counts on both sides instead of ``.X``.
    options : mapping, optional
        Overrides of the ``vcc2026`` profile (``PROFILES["vcc2026"]``).

    Returns
    -------
    Vcc2026Result
        Per-perturbation values and the six aggregates (raw metric values ``u``).

    Raises
    ------
    ValueError
        On non-count input, mismatched labels or genes, a missing control, a panel whose
        labels resolve to no target gene (pass ``target_genes``), or a real panel whose
        summed corrected effect size ``sum_p D_p`` is not positive (cell-eval2 refuses
        the ratio then).

    Notes
    -----
    cell-eval2 0.20.0, ``configs/vcc2026.yaml``, ``run.compute_metrics``. The prediction's
    DE is computed against the real control cells and its effects for ``pds_cosine`` against
    the real control profile (``control_source: real``).
    """
    r, p, targets, genes, opts = _prepare(pred, real, pert_col, control, target_genes, layer, options)
    return _result(_evaluate(r, p, targets, genes, opts, "real", strict="the real cells"))


def _baseline_cells(r: _Cells, targets: np.ndarray, seed: int, exclude_target: bool) -> _Cells:
    """Dispersed mean-response emission (cell-eval2 ``baseline.generic_response_profile``,
    ``_emission_scale``, ``_emit_scaled_resample``, ``_prediction_from_adata``)."""
    non = np.flatnonzero(np.arange(r.n_groups) != r.ctrl)
    means = np.vstack([np.asarray(r.X[r.code == gi].mean(axis=0)).ravel() for gi in non]) if non.size \
        else np.zeros((0, r.X.shape[1]))
    total = means.sum(axis=0)
    count = np.full(means.shape[1], float(non.size))
    if exclude_target:
        k = np.flatnonzero(targets >= 0)
        np.subtract.at(total, targets[k], means[k, targets[k]])
        np.subtract.at(count, targets[k], 1.0)
        if np.any(count <= 0):
            fail("real", "a panel where every gene keeps at least one non-targeting perturbation in the mean",
                 "genes targeted by every perturbation")
    prof = total / count
    ctrl_rows = np.flatnonzero(r.code == r.ctrl)
    ctrl_X = r.X[ctrl_rows]
    ctrl_pb = np.asarray(ctrl_X.mean(axis=0)).ravel()
    zero = ctrl_pb <= 0
    scale = np.where(zero, 0.0, prof / np.where(zero, 1.0, ctrl_pb))
    rng = np.random.default_rng(seed)
    order = np.argsort(r.labels[non].astype(str), kind="stable")  # sorted(non-control labels)
    src, pos = [], []
    for gi in non[order]:
        rows = np.flatnonzero(r.code == gi)
        src.append(rng.integers(0, ctrl_rows.size, size=rows.size))
        pos.append(rows)
    src = np.concatenate(src) if src else np.empty(0, dtype=np.int64)
    pos = np.concatenate(pos) if pos else np.empty(0, dtype=np.int64)
    em = ctrl_X[src].tocsr()
    em.data = (em.data * scale[em.indices]).astype(np.float32).astype(np.float64)
    em.eliminate_zeros()
    ctrl = ctrl_X.copy()
    ctrl.data = ctrl.data.astype(np.float32).astype(np.float64)
    X = sp.vstack([em, ctrl], format="csr")
    place = np.empty(r.X.shape[0], dtype=np.int64)
    place[np.concatenate([pos, ctrl_rows])] = np.arange(r.X.shape[0])
    X = X[place].tocsr()
    X.sort_indices()
    return _Cells(X, r.code.copy(), r.labels, r.ctrl)


def vcc2026_baseline(real, *, pert_col: str = "perturbation", control: str = "control",
                     target_genes: Mapping | None = None, layer: str | None = None,
                     seed: int | None = None, options: Mapping | None = None):
    """The mean-response baseline prediction of the vcc2026 scale (its 0 end).

    The profile is the equal-weight mean over non-control perturbations of their mean
    count vectors, each gene's mean leaving out the perturbation that targets it. Cells
    are emitted as in cell-eval2 (``emit="dispersed"``): for each perturbation (labels in
    sorted order) as many control cells as it has are drawn with replacement
    (``numpy.random.default_rng(seed).integers``) and each gene scaled by
    ``profile / control mean``, stored as float32; control rows keep the real control cells.

    Parameters
    ----------
    real : AnnData
        Observed cells, raw integer counts.
    pert_col, control, target_genes, layer
        As in :func:`vcc2026_metrics`.
    seed : int, optional
        Emission seed; default the profile's ``baseline_seed`` (0).
    options : mapping, optional
        Overrides of the ``vcc2026`` profile.

    Returns
    -------
    AnnData
        Same cells (``obs`` copied), genes and shape as ``real``; ``X`` float32 CSR.

    Notes
    -----
    cell-eval2 0.20.0 ``baseline.py`` (``build_generic_baseline``).
    """
    import anndata as ad

    r, _, targets, _genes, opts = _prepare(None, real, pert_col, control, target_genes, layer, options)
    seed = int(opts["baseline_seed"]) if seed is None else check("seed", seed, Integer(low=0))
    c = _baseline_cells(r, targets, int(seed), bool(opts["baseline_exclude_target"]))
    return ad.AnnData(X=sp.csr_matrix(c.X, dtype=np.float32), obs=real.obs.copy(), var=real.var.copy())


def _split_halves(real_obs_labels: pd.Series, seed: int):
    """cell-eval2 ``ceiling._disjoint_halves``: per group (pandas groupby order) a
    permutation by ``default_rng(seed)``, first ``n // 2`` cells to half A, next to B."""
    rng = np.random.default_rng(seed)
    a_idx, b_idx = [], []
    for idx in real_obs_labels.groupby(real_obs_labels, observed=True).indices.values():
        perm = rng.permutation(np.asarray(idx))
        h = perm.size // 2
        if h < 1:
            continue
        a_idx.append(perm[:h])
        b_idx.append(perm[h:2 * h])
    return np.concatenate(a_idx), np.concatenate(b_idx)


def vcc2026_anchors(real, *, pert_col: str = "perturbation", control: str = "control",
                    target_genes: Mapping | None = None, layer: str | None = None,
                    options: Mapping | None = None) -> pd.DataFrame:
    """Baseline ``b`` and replicate ``r`` of each vcc2026 metric, from the real data alone.

    - ``b``: the metrics of :func:`vcc2026_baseline` scored as an ordinary prediction.
    - ``r``: mean over ``anchor_splits`` (5) splits, seeds
      ``SeedSequence(anchor_base_seed).generate_state(5)``, of the metrics of half B
      scored against half A; every perturbation's and the control's cells are split into
      two disjoint halves of ``n // 2`` (groups of one cell are dropped) and each half is
      measured against its own control (``control_source="pred"``). For
      ``de_wilcoxon_lfc_nmae`` the gate and denominator come from the full real DE table
      and only the two fold-change vectors from the halves (each against its own control).

    Parameters
    ----------
    real : AnnData
        Observed cells, raw integer counts.
    pert_col, control, target_genes, layer, options
        As in :func:`vcc2026_metrics`.

    Returns
    -------
    DataFrame
        Index: the six metrics; columns ``baseline``, ``replicate``, ``replicate_sd``
        (population SD over splits), ``replicate_min``, ``replicate_max``.

    Notes
    -----
    cell-eval2 0.20.0 ``anchor.compute_replicate_anchor``, ``ceiling._disjoint_halves``,
    ``lfc_nmae_ref.compute_lfc_nmae_reference``, ``baseline.build_generic_baseline``.
    """
    r, _, targets, genes, opts = _prepare(None, real, pert_col, control, target_genes, layer, options)
    ts = float(opts["profile_target_sum"])
    sums_r, n_r = _group_sums(r)
    if np.any(n_r < 2):
        fail("real", "at least 2 cells in every group (the replicate splits each group in two)",
             f"groups with one cell: {list(map(str, r.labels[n_r < 2][:5]))}")
    stats = (_bulk(sums_r, ts), _jackknife(r, sums_r, n_r, ts))
    de_full = _de(r, None, opts)
    base = _baseline_cells(r, targets, int(opts["baseline_seed"]), bool(opts["baseline_exclude_target"]))
    b = _evaluate(r, base, targets, genes, opts, "real", de_real=de_full, real_stats=stats,
                  strict="the real cells")["aggregate"]
    labels = real.obs[pert_col].reset_index(drop=True)
    seeds = [int(s) for s in np.random.SeedSequence(int(opts["anchor_base_seed"])).generate_state(
        int(opts["anchor_splits"]))]
    non = np.flatnonzero(np.arange(r.n_groups) != r.ctrl)
    alpha = float(opts["fdr"])
    excl = _excl_mask((non.size, len(genes)), targets)
    gate = (de_full.padj[non] < alpha) & de_full.gate[None, :] & ~excl & np.isfinite(de_full.lfc[non])
    n_gate = gate.sum(axis=1)
    rows = []
    for seed in seeds:
        ia, ib = _split_halves(labels, seed)
        ha, hb = r.subset(ia), r.subset(ib)
        if not np.any(ha.code == r.ctrl):
            fail("real", "a control group of at least 2 cells (the replicate splits it)", "fewer")
        ev = _evaluate(ha, hb, targets, genes, opts, "pred", strict=f"half A of the split with seed {seed}")
        out, (da, db) = ev["aggregate"], ev["de"]
        la = np.where(da.gate[None, :] & np.isfinite(da.lfc[non]), da.lfc[non], 0.0)
        lb = np.where(db.gate[None, :] & np.isfinite(db.lfc[non]), db.lfc[non], 0.0)
        lf = de_full.lfc[non]
        with np.errstate(invalid="ignore", divide="ignore"):
            num = np.where(gate, np.abs(la - lb), 0.0).sum(axis=1) / n_gate
            den = np.where(gate, np.abs(lf), 0.0).sum(axis=1) / n_gate
            raw = num / den
        ok = (n_gate >= int(opts["lfc_nmae_min_gate"])) & np.isfinite(den) & (den != 0)
        out = dict(out)
        out["de_wilcoxon_lfc_nmae"] = float(raw[ok].mean()) if ok.any() else np.nan
        rows.append(out)
    reps = pd.DataFrame(rows)[list(VCC2026_METRICS)]
    return pd.DataFrame({
        "baseline": pd.Series(b)[list(VCC2026_METRICS)],
        "replicate": reps.mean(),
        "replicate_sd": reps.std(ddof=0),
        "replicate_min": reps.min(),
        "replicate_max": reps.max(),
    }).rename_axis("metric")


@dataclass(frozen=True)
class Vcc2026Score:
    """A prediction's vcc2026 score.

    Attributes
    ----------
    table : DataFrame
        Index: the six metrics; columns ``value`` (u), ``baseline`` (b), ``replicate`` (r),
        ``score`` (s = (u - b) / (r - b), clamped to [0, 1] for
        ``expr_mse_unbiased_capped_norm`` and floored at -6 for ``de_wilcoxon_lfc_nmae``).
    avg_score : float
        Equal-weight mean of the six scores.
    result : Vcc2026Result
        The per-perturbation values behind ``value``.
    """

    table: pd.DataFrame
    avg_score: float
    result: Vcc2026Result


def _score_one(name: str, u: float, b: float, r: float) -> float:
    lo, hi = _CLAMP[name]
    s = (u - b) / (r - b) if np.isfinite(u) else np.nan
    if not np.isfinite(s):
        if np.isfinite(lo) or name not in _METRIC_MIN:
            return float(lo) if np.isfinite(lo) else float("nan")
        s = (_METRIC_MIN[name] - b) / (r - b)
    return float(min(max(s, lo), hi))


def vcc2026_score(pred, real, *, pert_col: str = "perturbation", control: str = "control",
                  target_genes: Mapping | None = None, layer: str | None = None,
                  anchors: pd.DataFrame | None = None, options: Mapping | None = None) -> Vcc2026Score:
    """Score a prediction on cell-eval2's 2026 challenge scale.

    For each metric ``s = (u - b) / (r - b)``: 0 is the mean-response baseline, 1 a
    split-half repeat of the experiment; not clipped except ``expr_mse_unbiased_capped_norm``
    (clamped to [0, 1]) and ``de_wilcoxon_lfc_nmae`` (floored at -6). A metric without a
    value scores its floor (or, unfloored, the score of the metric's minimum 0).

    Parameters
    ----------
    pred, real, pert_col, control, target_genes, layer, options
        As in :func:`vcc2026_metrics`.
    anchors : DataFrame, optional
        Output of :func:`vcc2026_anchors` for ``real`` (computed when not given; it costs
        one baseline and five split-half evaluations).

    Returns
    -------
    Vcc2026Score

    Raises
    ------
    ValueError
        As :func:`vcc2026_metrics`, and when an anchor leaves no headroom (the replicate is
        not better than the baseline), where cell-eval2 refuses to score too.

    Notes
    -----
    cell-eval2 0.20.0 ``score._replicate_entries``, ``scoring.score_one`` (policy with the
    anchor set to the replicate: ``1 - (u - r)/(b - r)`` for errors, ``(u - b)/(r - b)``
    otherwise; the same number).
    """
    res = vcc2026_metrics(pred, real, pert_col=pert_col, control=control, target_genes=target_genes,
                          layer=layer, options=options)
    if anchors is None:
        anchors = vcc2026_anchors(real, pert_col=pert_col, control=control, target_genes=target_genes,
                                  layer=layer, options=options)
    check("anchors", anchors, Instance((pd.DataFrame,), label="a DataFrame from vcc2026_anchors"))
    if not set(VCC2026_METRICS) <= set(anchors.index) or not {"baseline", "replicate"} <= set(anchors.columns):
        fail("anchors", "a DataFrame from vcc2026_anchors (index: the six metrics; columns baseline, replicate)",
             anchors)
    rows = []
    for m in VCC2026_METRICS:
        u, b, r = float(res.aggregate[m]), float(anchors.loc[m, "baseline"]), float(anchors.loc[m, "replicate"])
        gap = (r - b) if _HIGHER[m] else (b - r)
        if not (np.isfinite(gap) and gap > 0):
            fail("anchors", f"a replicate better than the baseline for every metric ({m}: "
                            f"{'higher' if _HIGHER[m] else 'lower'} is better)",
                 f"baseline {b:.6g}, replicate {r:.6g}")
        rows.append({"metric": m, "value": u, "baseline": b, "replicate": r, "score": _score_one(m, u, b, r)})
    table = pd.DataFrame(rows).set_index("metric")
    return Vcc2026Score(table, float(table["score"].mean()), res)


# --------------------------------------------------------------------------- registry
def _cells_from_input(cs, n_test: int, name: str, integral: bool) -> _Cells:
    if cs is None:
        fail(name, "cells (the vcc2026 metrics need the raw counts of every cell)", None)
    code = np.asarray(cs.group, dtype=np.int64)
    code = np.where(code == -1, n_test, np.where(code >= 0, code, -1))
    # raw counts: the CellSet's counts when it carries them (metrics.score passes them
    # next to the log-normalised cells), else its matrix itself
    X = _as_counts(cs.X if getattr(cs, "counts", None) is None else cs.counts, name, integral=integral)
    labels = np.array([*(str(i) for i in range(n_test)), "__control__"], dtype=object)
    return _Cells(X, code, labels, n_test)


def _registry_values(inp) -> dict:
    """vcc2026 values of a :class:`~simpert.metrics.MetricInput`, cached per prediction."""
    key = "vcc2026"
    cache = inp.cache if inp.cache is not None else {}
    hit = cache.get(key)
    pc = inp.pred_cells
    if hit is not None and hit[0] is pc and hit[1] is inp.real_cells:
        return hit[2]
    P = inp.n_perturbations
    real = _cells_from_input(inp.real_cells, P, "real_cells", True)
    pred = _cells_from_input(pc, P, "pred_cells", False)
    for c, nm in ((real, "real_cells"), (pred, "pred_cells")):
        present = np.bincount(c.code[c.code >= 0], minlength=P + 1)
        if np.any(present == 0):
            fail(nm, "cells for every test perturbation and the control", "groups without cells")
    targets = np.asarray(inp.targets, dtype=np.int64)
    opts = _profile("vcc2026", None)
    out = _evaluate(real, pred, targets, inp.genes, opts, "real")
    cache[key] = (pc, inp.real_cells, out)
    return out


def _reader(name: str):
    def fn(inp) -> np.ndarray:
        out = _registry_values(inp)
        if name == "expr_mse_unbiased_capped_norm":
            return np.full(inp.n_perturbations, out["aggregate"][name])
        return np.asarray(out[name], dtype=float)

    fn.__name__ = name
    return fn


_SECTIONS = """

Parameters
----------
inp : MetricInput
    Needs ``real_cells`` and ``pred_cells`` with raw counts in ``CellSet.counts`` (or in
    ``CellSet.X`` when ``counts`` is None; control cells coded -1) and ``targets``, each
    perturbation's target gene column. :func:`simpert.metrics.score` passes the counts of
    the screen and of each prediction's cells. Computed once per
    prediction for all six metrics (cached in ``inp.cache``).

Returns
-------
ndarray, shape (P,)
    {returns}

Raises
------
ValueError
    When the cells are missing or not raw counts.
"""
_PER = "One value per test perturbation, NaN where the metric is undefined."


def _doc(fn, text, returns=_PER):
    fn.__doc__ = text + _SECTIONS.format(returns=returns)
    return fn


pds_cosine = _doc(_reader("pds_cosine"), """Perturbation discrimination score, cosine distance (cell-eval2 ``pds_cosine``).

Profiles ``b = log1p(5e4 * group count sum / group total)``; effects against the real
control profile on both sides; every panel target gene removed from all vectors; ``d = 1``
for a zero vector; ``PDS_p = 1 - k_p / (n - 1)``, ``k_p`` the midrank of the own distance
among the ``n`` distances. Follows cell-eval2 0.20.0 ``metrics/discrimination.py`` and
``distances.py``.""")
expr_mse_unbiased_capped_norm = _doc(_reader("expr_mse_unbiased_capped_norm"), """Sampling-corrected
expression error ``sum_p N_p / sum_p D_p`` (cell-eval2 ``expr_mse_unbiased_capped_norm``).

``N_p = (||bhat_p - b_p||^2 - rho min(Chat_p, C_p) - C_p) / G_p`` and
``D_p = (||b_p - b_ctrl||^2 - C_p - C_ctrl) / G_p``: profiles as in ``pds_cosine``, ``C``
the delete-one jackknife correction of each group's profile, ``rho = min(1, B / sum_q
min(Chat_q, C_q) / G_q)`` with ``B`` the prediction's ``1/G_p``-weighted across-perturbation
centred sum of squares; distances without the perturbation's own target gene (``G_p``
genes). Follows cell-eval2 0.20.0 ``metrics/delta.py``, ``moments.py`` and ``run.py``
(``_derived_value``).""", returns="The panel's single value, repeated for every perturbation.")
de_wilcoxon_direction_fidelity_yield_raw = _doc(_reader("de_wilcoxon_direction_fidelity_yield_raw"),
                                                """Directional calls: ``k / max(n_pred, n_real)``
(cell-eval2 ``direction_fidelity_yield_raw``).

``n_real`` real significant genes; ``n_pred`` predicted significant genes present in both DE
tables with a defined non-zero real LFC; ``k`` of them whose predicted LFC has the real sign;
each perturbation's own target gene removed; NaN when both counts are 0. Follows cell-eval2
0.20.0 ``metrics/direction.py``.""")
de_wilcoxon_direction_reach_raw = _doc(_reader("de_wilcoxon_direction_reach_raw"), """Depth of correct
directions: ``k* / n_real`` (cell-eval2 ``direction_reach_raw``).

The real significant genes present in both tables are ordered by the prediction (its
significant calls first, then predicted padj, p-value, |LFC| descending, gene name);
``k*`` is the deepest prefix, counting adjudicable genes, whose sign purity is >= 0.9 (0
if none); NaN when ``n_real`` is 0. Follows cell-eval2 0.20.0 ``metrics/direction.py``.""")
de_wilcoxon_sig_jaccard = _doc(_reader("de_wilcoxon_sig_jaccard"), """Jaccard index of the real and
predicted significant gene sets, 1 for an empty union (cell-eval2 ``de_sig_jaccard``).

Each perturbation's own target gene removed from both sets. Follows cell-eval2 0.20.0
``metrics/de.py``.""")
de_wilcoxon_lfc_nmae = _doc(_reader("de_wilcoxon_lfc_nmae"), """Normalised fold-change error
``sum |lfc_pred - lfc_real| / sum |lfc_real|`` (cell-eval2 ``de_lfc_nmae``).

Over the real significant genes with a finite real LFC, the target gene removed; a predicted
LFC that is missing or not finite counts as 0; NaN for fewer than 10 such genes or a zero
denominator. Follows cell-eval2 0.20.0 ``metrics/de.py``.""")

_CE2 = "cell-eval2"
for _name, _fn, _best, _desc in [
    ("pds_cosine", pds_cosine, 1.0, "PDS, cosine distance, panel target genes removed (vcc2026)"),
    ("expr_mse_unbiased_capped_norm", expr_mse_unbiased_capped_norm, 0.0,
     "sampling-corrected expression error over the corrected effect size (vcc2026)"),
    ("de_wilcoxon_direction_fidelity_yield_raw", de_wilcoxon_direction_fidelity_yield_raw, 1.0,
     "correct-direction calls over max(predicted, real) significant genes (vcc2026)"),
    ("de_wilcoxon_direction_reach_raw", de_wilcoxon_direction_reach_raw, 1.0,
     "depth of the prediction's ranking with sign purity >= 0.9, over real significant genes (vcc2026)"),
    ("de_wilcoxon_sig_jaccard", de_wilcoxon_sig_jaccard, 1.0,
     "Jaccard index of real and predicted significant genes (vcc2026)"),
    ("de_wilcoxon_lfc_nmae", de_wilcoxon_lfc_nmae, 0.0,
     "normalised mean absolute LFC error over real significant genes (vcc2026)"),
]:
    register(Metric(_name, _fn, _HIGHER[_name], _best, frozenset({"cells"}), _desc, _CE2,
                    target="exclude", reference="control",
                    per_set=_name == "expr_mse_unbiased_capped_norm"), overwrite=True)
