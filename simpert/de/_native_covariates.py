"""The native engine for one perturbation factor plus a few covariates (``~ replicate + perturbation``).

The model matrix is R's ``model.matrix(~ covariates + perturbation)``: an intercept, the
covariate columns ``C`` (``p`` of them: indicators of the non-reference levels of factor
covariates, numeric covariates as they are) and an indicator per non-reference perturbation
level. With the perturbation indicators as the "sparse" block (a diagonal block of
``X'WX``) and the intercept and covariates as the "dense" block ``D`` (``q = p + 1``
columns), every per-gene system is solved through the Schur complement of the diagonal
block, a ``q x q`` matrix::

    A_l = sum_{j in l} w_j + lambda            (non-reference levels l)
    B_l = sum_{j in l} w_j d_j                 (q-vector per level)
    M   = sum_j w_j d_j d_j' + lambda I - sum_l B_l B_l' / A_l
    c   = M^-1 (D'Wz - sum_l B_l S_l / A_l),   b_l = (S_l - B_l'c) / A_l

so the cost per gene is ``O(n_samples q + n_levels q^2)``, as for the one-factor design up
to the factor ``q``. The same block algebra gives the Wald standard errors (the sandwich
covariance of DESeq2's ridge-penalised fit), the hat diagonals of the Cook's distances, and
the Cox-Reid term: ``log det(X'WX)`` equals that of the cell-means coding (one indicator per
level and the covariates without intercept; the change of coding has determinant 1), which
is ``sum_l log W_l + log det M`` with ``M`` of size ``p``.

Pipeline (R DESeq2 1.38 ``DESeq()``): the gene-wise step fits the GLM with the starting
dispersions to get the fitted means (R's ``linearMu`` is false once the design has more
cells -- distinct model-matrix rows -- than coefficients; otherwise the least-squares fit of
the normalised counts is used), the Cook's distances use R's cells (samples with equal
model-matrix rows): robust dispersion from cells of 3 or more samples, maximum over those
samples, replacement in cells of 7 or more, ``p`` = number of model-matrix columns.
Normal-prior shrinkage follows ``lfcShrink(type = "normal")``: prior variances per term from
the MLE coefficients (``estimateBetaPriorVar``, averaged over a factor's levels and their
contrasts), then the expanded model (every level of every factor) refitted with those ridges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import gammaln, ndtr

from ._dataset import DEDataset
from ._native_cooks import cooks_cutoff, replacement_counts, robust_disp
from ._native_dispersion import MIN_DISP, genewise_dispersion, map_dispersion
from ._native_filtering import adjust_pvalues, shrunk_results_rules
from ._native_glm import LOG2E
from ._native_nbloglik import count_table
from ._native_sizefactors import base_mean_var, median_of_ratios
from ._native_trend import fit_trend, prior_variance

__all__ = ["CovariateDesign", "fit_native_covariates"]

_LAM = 1e-6 / np.log(2.0) ** 2  # DESeq2's ridge (1e-6 on the log2 scale) on the natural-log scale


def _det_inv(M):
    """Determinants and inverses of a stack of small symmetric matrices ``(g, q, q)``.

    Closed forms (adjugate) for ``q <= 3``, which avoid one LAPACK call per gene;
    ``numpy.linalg`` beyond.
    """
    q = M.shape[-1]
    if q == 1:
        d = M[:, 0, 0]
        with np.errstate(divide="ignore"):
            return d, (1.0 / d)[:, None, None]
    if q == 2:
        a, b, c = M[:, 0, 0], M[:, 0, 1], M[:, 1, 1]
        d = a * c - b * b
        adj = np.stack([np.stack([c, -b], axis=-1), np.stack([-b, a], axis=-1)], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return d, adj / d[:, None, None]
    if q == 3:
        a, b, c = M[:, 0, 0], M[:, 0, 1], M[:, 0, 2]
        e, f, i = M[:, 1, 1], M[:, 1, 2], M[:, 2, 2]
        A, B, C = e * i - f * f, c * f - b * i, b * f - c * e
        E, F, I = a * i - c * c, b * c - a * f, a * e - b * b
        d = a * A + b * B + c * C
        adj = np.stack([np.stack([A, B, C], axis=-1), np.stack([B, E, F], axis=-1),
                        np.stack([C, F, I], axis=-1)], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return d, adj / d[:, None, None]
    return np.linalg.det(M), np.linalg.inv(M)


class CovariateDesign:
    """Sample structure of a one-factor-plus-covariates design (shared by every gene).

    Parameters
    ----------
    starts, sizes : ndarray of int
        Perturbation level segments (samples ordered by level, reference first).
    covariates : ndarray, shape (n_samples, p)
        Covariate columns of the model matrix.
    """

    def __init__(self, starts: np.ndarray, sizes: np.ndarray, covariates: np.ndarray):
        self.starts = np.asarray(starts, dtype=np.intp)
        self.sizes = np.asarray(sizes, dtype=np.intp)
        self.C = np.ascontiguousarray(covariates, dtype=float)
        self.m, self.p = self.C.shape
        self.L = len(self.starts)
        self.level = np.repeat(np.arange(self.L), self.sizes)
        self.n_coef = self.L + self.p
        self.Dt = np.column_stack([np.ones(self.m), self.C])  # intercept and covariates
        self._prods = {}
        self.treat = np.ones(self.L, dtype=bool)
        self.treat[0] = False
        self.cellmeans = np.ones(self.L, dtype=bool)
        # cells: runs of equal (level, covariate row); samples are sorted so they are contiguous
        key = np.column_stack([self.level, self.C])
        new = np.ones(self.m, dtype=bool)
        new[1:] = np.any(key[1:] != key[:-1], axis=1)
        self.cell_starts = np.flatnonzero(new).astype(np.intp)
        self.cell_sizes = np.diff(np.r_[self.cell_starts, self.m]).astype(np.intp)
        self.n_cells = self.cell_starts.size
        # R's model matrix, columns (Intercept), covariates, perturbation levels 2..L
        X = np.zeros((self.m, self.n_coef))
        X[:, : self.p + 1] = self.Dt
        rows = np.flatnonzero(self.level > 0)
        X[rows, self.p + self.level[rows]] = 1.0
        self.X = X

    # ------------------------------------------------------------------ block algebra
    def _products(self, D):
        """Column products ``d_k d_r`` of ``D`` (samples x q^2) and which columns are all ones."""
        key = id(D)
        if key not in self._prods:
            q = D.shape[1]
            P = np.ascontiguousarray((D[:, :, None] * D[:, None, :]).reshape(self.m, q * q))
            ones = np.all(D == 1.0, axis=0)
            self._prods[key] = (P, ones, np.ascontiguousarray(D.T))
        return self._prods[key]

    def _sums(self, w, D):
        """Per-level sums ``W_l``, ``B_l = sum w_j d_j`` and ``sum w_j d_j d_j'``."""
        P, ones, DT = self._products(D)
        g, q = w.shape[0], D.shape[1]
        Wl = np.add.reduceat(w, self.starts, axis=1)
        B = np.empty((g, self.L, q))
        for k in range(q):  # one 2-d reduction per column (contiguous along samples)
            B[:, :, k] = Wl if ones[k] else np.add.reduceat(w * DT[k][None, :], self.starts, axis=1)
        DD = (w @ P).reshape(g, q, q)
        return Wl, B, DD

    def _schur(self, Wl, B, DD, sparse, lam, lam_dense=None):
        invA = np.where(sparse[None, :], 1.0 / (Wl + lam), 0.0)
        Bs = B * invA[:, :, None]
        M = DD - np.matmul(Bs.transpose(0, 2, 1), B)
        if lam_dense is not None:
            M = M + np.diag(lam_dense)[None]
        elif lam:
            M = M + lam * np.eye(DD.shape[1])[None]
        return invA, Bs, M

    def solve(self, w, z, *, lam: float, D=None, sparse=None, lam_dense=None):
        """Weighted (ridge) least squares of ``z`` on the model matrix for every gene.

        ``lam`` is the ridge of the level columns and ``lam_dense`` (default ``lam``) that
        of the dense columns of ``D``.

        Returns
        -------
        b : ndarray, shape (n_genes, n_levels)
            Level coefficients (0 for levels without a column).
        c : ndarray, shape (n_genes, q)
            Dense-block coefficients.
        """
        D = self.Dt if D is None else D
        sparse = self.treat if sparse is None else sparse
        Wl, B, DD = self._sums(w, D)
        wz = w * z
        S = np.add.reduceat(wz, self.starts, axis=1)
        t = wz @ D
        invA, Bs, M = self._schur(Wl, B, DD, sparse, lam, lam_dense)
        rhs = t - np.einsum("gl,glq->gq", S, Bs)
        c = np.einsum("gqr,gr->gq", _det_inv(M)[1], rhs)
        b = invA * (S - np.einsum("glq,gq->gl", B, c))
        return b, c

    def eta(self, b, c, D=None):
        """Linear predictor per sample (natural log, size factor 1)."""
        D = self.Dt if D is None else D
        return np.repeat(b, self.sizes, axis=1) + c @ self._products(D)[2]

    def ls_fitted(self, Y):
        """Unweighted least-squares fitted values of every row of ``Y`` (R's ``linearModelMu``)."""
        w = np.ones_like(Y)
        b, c = self.solve(w, Y, lam=0.0)
        return self.eta(b, c)

    # ------------------------------------------------------------------ Cox-Reid term
    def cr_logdet(self, w):
        """``log det(X'WX)`` per gene (cell-means coding; same value as R's coding)."""
        Wl, B, DD = self._sums(w, self.C)
        _, _, M = self._schur(Wl, B, DD, self.cellmeans, 0.0)
        det = _det_inv(M)[0] if M.shape[1] <= 3 else np.linalg.det(M)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(Wl).sum(axis=1) + np.log(det)

    def cr_trace(self, w):
        """``tr((X'WX)^-1 X' diag(w^2) X)`` per gene (minus the derivative of the log
        determinant in the dispersion, since ``dw / d alpha = -w^2``)."""
        C = self.C
        Wl, B, DD = self._sums(w, C)
        invA, Bs, M = self._schur(Wl, B, DD, self.cellmeans, 0.0)
        w2 = w * w
        A2, B2, D2 = self._sums(w2, C)
        cross = np.matmul(B2.transpose(0, 2, 1), Bs)
        U = D2 - cross - cross.transpose(0, 2, 1) + np.matmul((Bs * A2[:, :, None]).transpose(0, 2, 1), Bs)
        tr = np.einsum("gqr,grq->g", _det_inv(M)[1], U)
        return (A2 * invA).sum(axis=1) + tr

    def hat(self, w):
        """Hat diagonals ``w_j x_j' (X'WX)^-1 x_j`` (no ridge, as the one-factor engine)."""
        C = self.C
        Wl, B, DD = self._sums(w, C)
        invA, Bs, M = self._schur(Wl, B, DD, self.cellmeans, 0.0)
        U = C[None, :, :] - Bs[:, self.level, :]
        Minv = _det_inv(M)[1]
        quad = np.einsum("gmq,gqr,gmr->gm", U, Minv, U)
        return w * (invA[:, self.level] + quad)

    def contrast_se(self, w, lam: float = _LAM):
        """Sandwich SE (natural log) of every perturbation coefficient, ``(n_levels - 1, n_genes)``.

        ``Sigma = (X'WX + lam I)^-1 X'WX (X'WX + lam I)^-1 = H^-1 - lam H^-2``; for
        coefficient ``l`` with ``v = H^-1 e_l`` the variance is ``v_l - lam |v|^2``.
        """
        Wl, B, DD = self._sums(w, self.Dt)
        invA, Bs, M = self._schur(Wl, B, DD, self.treat, lam)
        Minv = _det_inv(M)[1]
        s = np.einsum("gqr,glr->glq", Minv, Bs)  # M^-1 B_l / A_l
        vl = invA + np.einsum("glq,glq->gl", Bs, s)
        Q = np.matmul(Bs.transpose(0, 2, 1), Bs)
        sQs = np.einsum("glq,gqr,glr->gl", s, Q, s)
        v2 = sQs + 2.0 * invA * np.einsum("glq,glq->gl", Bs, s) + invA ** 2 + (s * s).sum(axis=2)
        var = vl - lam * v2
        return np.sqrt(np.maximum(var[:, 1:], 0.0)).T


# ---------------------------------------------------------------------- GLM
def _nb_dev(y, mu, r, dev_const):
    return -2.0 * (dev_const + (r * np.log(r / (r + mu)) + y * np.log(mu / (r + mu))).sum(axis=1))


def irls_covariates(y, sf, alpha, des: CovariateDesign, *, minmu: float = 0.5, maxit: int = 100,
                    tol: float = 1e-8, large: float = 30.0, lam: float = _LAM):
    """IRLS of the NB GLM with DESeq2's stopping rule (``fitBeta``), vectorised over genes.

    Returns
    -------
    b : ndarray, shape (n_genes, n_levels)
        Perturbation coefficients (natural log; column 0 is 0).
    c : ndarray, shape (n_genes, p + 1)
        Intercept and covariate coefficients.
    n_iter : ndarray of int
        Iterations (``maxit``: not converged, as R).
    """
    g = y.shape[0]
    logsf = np.log(sf)
    b, c = des.solve(np.ones_like(y), np.log(y / sf[None, :] + 0.1), lam=0.0)  # R's least-squares start
    n_iter = np.full(g, maxit)
    r_all = 1.0 / alpha[:, None]
    tab = count_table(y)
    if tab is None:
        dev_const = (gammaln(y + r_all) - gammaln(y + 1.0)).sum(axis=1)
    else:
        vals, mult = tab
        dev_const = (mult * (gammaln(vals + r_all) - gammaln(vals + 1.0))).sum(axis=1)
    dev_const -= y.shape[1] * gammaln(r_all[:, 0])
    dev_old = np.zeros(g)
    active = np.arange(g)
    mu_all = np.maximum(np.exp(des.eta(b, c) + logsf[None, :]), minmu)
    for it in range(maxit):
        if active.size == 0:
            break
        ya, aa = y[active], alpha[active]
        mu = mu_all
        w = mu / (1.0 + aa[:, None] * mu)
        z = np.log(mu) - logsf[None, :] + (ya - mu) / mu
        bn, cn = des.solve(w, z, lam=lam)
        b[active], c[active] = bn, cn
        too_large = (np.abs(bn[:, 1:]).max(axis=1, initial=0.0) > large) | (np.abs(cn).max(axis=1) > large)
        mu = np.maximum(np.exp(des.eta(bn, cn) + logsf[None, :]), minmu)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = _nb_dev(ya, mu, r_all[active], dev_const[active])
            conv_test = np.abs(dev - dev_old[active]) / (np.abs(dev) + 0.1)
        dev_old[active] = dev
        failed = too_large | np.isnan(conv_test)
        conv = ~failed & (it > 0) & (conv_test < tol)
        n_iter[active[conv]] = it + 1
        n_iter[active[failed]] = maxit
        keep = ~(conv | failed)
        active = active[keep]
        mu_all = mu[keep]  # the next step's clipped means, indexed like ``active``
    return b, c, n_iter


def _optim(y, sf, alpha, X, lam, coef, start, *, large: float = 30.0):
    """Bounded L-BFGS-B fit of the coefficients of model matrix ``X`` for every row of ``y``.

    As :func:`simpert.de._native_glm.optim_refit` (R's ``fitNbinomGLMsOptim``): NB log
    likelihood with unclipped means plus a ``N(0, 1 / lam)`` prior per coefficient, log2
    scale; ``coef`` (IRLS result) and ``start`` (least-squares start) are natural-log
    coefficients in the columns of ``X``.
    """
    from scipy.optimize import minimize

    n_par = X.shape[1]
    ln2 = np.log(2.0)
    log_prior_const = float(np.sum(-0.5 * np.log(2.0 * np.pi) + 0.5 * np.log(lam)))
    out = np.empty_like(coef)
    conv = np.zeros(y.shape[0], dtype=bool)
    for i in range(y.shape[0]):
        yi, r = y[i], 1.0 / alpha[i]
        const = float(np.sum(gammaln(yi + r) - gammaln(r) - gammaln(yi + 1.0))) + log_prior_const
        x0 = coef[i] * LOG2E
        if not np.all(np.abs(x0) < large):
            x0 = start[i].copy()  # natural-log start, as R

        def f(q, yi=yi, r=r, const=const):
            mu = sf * np.exp(ln2 * (X @ q))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                ll = np.sum(r * np.log(r / (r + mu)) + np.where(yi > 0, yi * np.log(mu / (r + mu)), 0.0))
            val = -(ll + const) + 0.5 * np.dot(lam * q, q)
            return val if np.isfinite(val) else 1e300

        def grad(q, f=f):
            gr = np.empty_like(q)
            for k in range(q.size):
                up, dn = q.copy(), q.copy()
                up[k] = min(q[k] + 1e-3, large)
                dn[k] = max(q[k] - 1e-3, -large)
                gr[k] = (f(up) - f(dn)) / (up[k] - dn[k])
            return gr

        res = minimize(f, x0, jac=grad, method="L-BFGS-B", bounds=[(-large, large)] * n_par,
                       options={"maxiter": 100, "ftol": 1e7 * np.finfo(float).eps, "gtol": 0.0})
        out[i] = res.x * ln2
        conv[i] = bool(res.success)
    return out, conv


def optim_refit_covariates(y, sf, alpha, des: CovariateDesign, b, c, *, lam_log2: float = 1e-6,
                           large: float = 30.0):
    """Refit genes whose IRLS did not converge by bounded L-BFGS-B (``fitNbinomGLMsOptim``).

    As :func:`simpert.de._native_glm.optim_refit`, with R's model matrix of the design.

    Returns
    -------
    b, c : ndarray
        Refitted coefficients (natural log).
    converged : ndarray of bool
    """
    p = des.p
    b0, c0 = des.solve(np.ones_like(y), np.log(y / sf[None, :] + 0.1), lam=0.0)
    q, conv = _optim(y, sf, alpha, des.X, np.full(des.X.shape[1], lam_log2), np.column_stack([c, b[:, 1:]]),
                     np.column_stack([c0, b0[:, 1:]]), large=large)
    b, c = b.copy(), c.copy()
    c[:], b[:, 0], b[:, 1:] = q[:, : p + 1], 0.0, q[:, p + 1:]
    return b, c, conv


def _glm(y, sf, alpha, des):
    b, c, n_iter = irls_covariates(y, sf, alpha, des)
    conv = n_iter < 100
    bad = np.flatnonzero(~conv)
    if bad.size:  # R: fitNbinomGLMsOptim for every gene whose IRLS hit maxit
        b[bad], c[bad], conv[bad] = optim_refit_covariates(y[bad], sf, alpha[bad], des, b[bad], c[bad])
    return b, c, conv


# ---------------------------------------------------------------------- normal-prior shrinkage
def expanded_columns(ds: DEDataset):
    """R's expanded model matrix without the perturbation block (``makeExpandedModelMatrix``).

    Returns
    -------
    D : ndarray, shape (n_samples, q)
        Intercept, an indicator for every level of each factor covariate, numeric covariates.
    terms : list of (str, slice, slice, bool)
        Per covariate term: its columns in ``D``, its columns in the standard coding (among
        the covariate columns) and whether it is a factor.
    """
    cols, terms = [np.ones(ds.n_samples)], []
    pos_e, pos_s = 1, 0
    for term in ds.covariate_frame.columns:
        v = ds.covariate_frame[term]
        if isinstance(v.dtype, pd.CategoricalDtype):
            k = len(v.cat.categories)
            cols.extend((v.cat.codes.to_numpy() == j).astype(float) for j in range(k))
            terms.append((term, slice(pos_e, pos_e + k), slice(pos_s, pos_s + k - 1), True))
            pos_e, pos_s = pos_e + k, pos_s + k - 1
        else:
            cols.append(v.to_numpy(dtype=float))
            terms.append((term, slice(pos_e, pos_e + 1), slice(pos_s, pos_s + 1), False))
            pos_e, pos_s = pos_e + 1, pos_s + 1
    return np.column_stack(cols), terms


def shrink_normal_covariates(y, sf, alpha, des: CovariateDesign, De, lam_pert: float, lam_dense: np.ndarray,
                             *, maxit: int = 100, tol: float = 1e-8, minmu: float = 0.5, large: float = 30.0):
    """``lfcShrink(type = "normal")`` with covariates: the expanded model with a normal prior.

    The expanded design (intercept, every level of every factor, numeric covariates) has a
    ridge on every column (``1 / prior variance``, natural-log scale): ``lam_pert`` on each
    perturbation level, ``lam_dense`` on the columns of ``De``. IRLS from R's start for a
    rank-deficient design (intercept at the log mean of the normalised counts, the rest 0)
    with R's stopping rule; the shrunken LFC is ``b_l - b_control`` and its SE the sandwich
    ``H^-1 - H^-1 Lambda H^-1`` of that contrast.

    Returns
    -------
    lfc, se : ndarray, shape (n_levels - 1, n_genes)
        Log2 scale.
    """
    g = y.shape[0]
    sparse = des.cellmeans
    logsf = np.log(sf)
    b = np.zeros((g, des.L))
    c = np.zeros((g, De.shape[1]))
    c[:, 0] = np.log((y / sf[None, :]).mean(axis=1))
    r_all = 1.0 / alpha[:, None]
    dev_const = (gammaln(y + r_all) - gammaln(y + 1.0)).sum(axis=1) - y.shape[1] * gammaln(r_all[:, 0])
    dev_old = np.zeros(g)
    active = np.arange(g)
    n_iter = np.full(g, maxit)
    for it in range(maxit):
        if active.size == 0:
            break
        ya, aa = y[active], alpha[active]
        mu = np.maximum(np.exp(des.eta(b[active], c[active], De) + logsf[None, :]), minmu)
        w = mu / (1.0 + aa[:, None] * mu)
        z = np.log(mu) - logsf[None, :] + (ya - mu) / mu
        bn, cn = des.solve(w, z, lam=lam_pert, D=De, sparse=sparse, lam_dense=lam_dense)
        b[active], c[active] = bn, cn
        too_large = (np.abs(bn).max(axis=1) > large) | (np.abs(cn).max(axis=1) > large)
        mu = np.maximum(np.exp(des.eta(bn, cn, De) + logsf[None, :]), minmu)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = _nb_dev(ya, mu, r_all[active], dev_const[active])
            conv_test = np.abs(dev - dev_old[active]) / (np.abs(dev) + 0.1)
        dev_old[active] = dev
        failed = too_large | np.isnan(conv_test)
        conv = ~failed & (it > 0) & (conv_test < tol)
        n_iter[active[conv]] = it + 1
        active = active[~(conv | failed)]
    bad = np.flatnonzero(n_iter >= maxit)
    if bad.size:  # R: fitNbinomGLMsOptim with the prior, for fits at the iteration cap
        Xe = np.column_stack([De, (des.level[:, None] == np.arange(des.L)[None, :]).astype(float)])
        ln2sq = np.log(2.0) ** 2
        lam_log2 = np.r_[lam_dense * ln2sq, np.full(des.L, lam_pert * ln2sq)]
        start = np.zeros((bad.size, Xe.shape[1]))
        start[:, 0] = np.log((y[bad] / sf[None, :]).mean(axis=1))  # R's start, as in the IRLS
        q, _ = _optim(y[bad], sf, alpha[bad], Xe, lam_log2, np.column_stack([c[bad], b[bad]]), start,
                      large=large)
        c[bad], b[bad] = q[:, : De.shape[1]], q[:, De.shape[1]:]
    mc = np.maximum(np.exp(des.eta(b, c, De)) * sf[None, :], minmu)
    w = mc / (1.0 + alpha[:, None] * mc)
    Wl, B, DD = des._sums(w, De)
    invA, Bs, M = des._schur(Wl, B, DD, sparse, lam_pert, lam_dense)
    Minv = _det_inv(M)[1]
    d = Bs[:, 1:, :] - Bs[:, :1, :]  # (g, L-1, q)
    s = np.einsum("gqr,glr->glq", Minv, d)
    a_l, a_0 = invA[:, 1:], invA[:, :1]
    cv = a_l + a_0 + np.einsum("glq,glq->gl", d, s)
    Q = np.matmul(Bs.transpose(0, 2, 1), Bs)
    v2 = (np.einsum("glq,gqr,glr->gl", s, Q, s) + 2.0 * a_l * np.einsum("glq,glq->gl", Bs[:, 1:, :], s)
          - 2.0 * a_0 * np.einsum("gq,glq->gl", Bs[:, 0, :], s) + a_l ** 2 + a_0 ** 2)
    var = cv - lam_pert * v2 - np.einsum("glq,q,glq->gl", s, lam_dense, s)
    lfc = (b[:, 1:] - b[:, :1]).T * LOG2E
    return lfc, np.sqrt(np.maximum(var, 0.0)).T * LOG2E


# ---------------------------------------------------------------------- pipeline
def _rough_init(y, sf, des, base_mean, base_var, max_disp):
    """``min(roughDispEstimate, momentsDispEstimate)`` clipped (R's starting dispersions)."""
    norm = y / sf[None, :]
    mu = np.maximum(des.ls_fitted(norm), 1.0)
    rough = np.maximum((((norm - mu) ** 2 - mu) / mu ** 2).sum(axis=1) / (des.m - des.n_coef), 0.0)
    xim = np.mean(1.0 / sf)
    with np.errstate(divide="ignore", invalid="ignore"):
        moments = (base_var - xim * base_mean) / base_mean ** 2
    return np.minimum(np.maximum(MIN_DISP, np.minimum(rough, moments)), max_disp)


def _disp_coef(y, sf, alpha_init, des):
    """Coefficients of the gene-wise step's fitted means (natural log).

    R's ``linearMu`` (as many cells as coefficients): the least-squares fit of the
    normalised counts, returned as fitted values; otherwise the GLM with the starting
    dispersions.
    """
    if des.n_cells == des.n_coef:
        return des.ls_fitted(y / sf[None, :]), None
    b, c, _ = _glm(y, sf, alpha_init, des)
    return b, c


def _disp_mu(coef, sf, des):
    """Fitted means of the gene-wise step (clipped at minmu 0.5)."""
    b, c = coef
    mu = b * sf[None, :] if c is None else np.exp(des.eta(b, c)) * sf[None, :]
    return np.maximum(mu, 0.5)


def _dispersions(Y, sf, des, base_mean, base_var, max_disp, n_jobs, trend=None, prior=None,
                 fit_type="parametric"):
    from ._native import _map

    m = Y.shape[1]

    linear = des.n_cells == des.n_coef

    def genewise(bl):
        y = Y[bl]
        init = _rough_init(y, sf, des, base_mean[bl], base_var[bl], max_disp)
        coef = _disp_coef(y, sf, init, des)
        disp = genewise_dispersion(y, _disp_mu(coef, sf, des), des, init, max_disp)
        return (disp, init) if linear else (disp, init, coef[0], coef[1])

    parts = _map(genewise, Y.shape[0], m, n_jobs)
    disp_gene, init = parts[:2]
    if trend is None:
        trend = fit_trend(base_mean, disp_gene, fit_type=fit_type)
    disp_fit = trend(base_mean)
    if prior is None:
        prior = prior_variance(disp_gene, disp_fit, m, des.n_coef)
    prior_var, var_log = prior

    def maps(bl):
        y = Y[bl]
        # the same means as the gene-wise step
        coef = _disp_coef(y, sf, init[bl], des) if linear else (parts[2][bl], parts[3][bl])
        mu = _disp_mu(coef, sf, des)
        return map_dispersion(y, mu, des, disp_gene[bl], disp_fit[bl], prior_var, max_disp)

    disp_map = _map(maps, Y.shape[0], m, n_jobs)
    outlier = np.log(disp_gene) > np.log(disp_fit) + 2.0 * np.sqrt(var_log)
    final = np.where(outlier, disp_gene, disp_map)
    return disp_gene, disp_fit, disp_map, final, outlier, trend, (prior_var, var_log)


def _glm_cooks(Y, sf, alpha, des, cutoff, replaceable, cooks_samples, n_jobs):
    from ._native import _map

    def work(bl):
        y = Y[bl]
        a = alpha[bl]
        b, c, conv = _glm(y, sf, a, des)
        mu = np.exp(des.eta(b, c)) * sf[None, :]
        mc = np.maximum(mu, 0.5)
        w = mc / (1.0 + a[:, None] * mc)
        H = des.hat(w)
        rob = robust_disp(y / sf[None, :], des.cell_starts, des.cell_sizes)
        V = mu + rob[:, None] * mu ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            cd = (y - mu) ** 2 / V / des.n_coef * H / (1.0 - H) ** 2
        if cooks_samples.any():
            mx = cd[:, cooks_samples].max(axis=1)
            mx_rep = np.where(replaceable[None, :], 0.0, cd)[:, cooks_samples].max(axis=1)
        else:
            mx = mx_rep = np.full(y.shape[0], np.nan)
        any_out = (cd > cutoff).any(axis=1)
        rep_out = ((cd > cutoff) & replaceable[None, :]).any(axis=1)
        se = des.contrast_se(w).T
        return b, c, conv, se, mx, mx_rep, any_out, rep_out, cd > cutoff

    return _map(work, Y.shape[0], Y.shape[1], n_jobs)


def fit_native_covariates(ds: DEDataset, *, alpha: float = 0.1, cooks: bool = True,
                          independent_filter: bool = True, n_jobs: int | None = 1,
                          min_replicates_replace: int = 7, fit_type: str = "parametric",
                          shrink: str | None = None):
    """Run the native engine on a dataset with covariates.

    Parameters
    ----------
    ds : DEDataset
        Counts and a design with covariates.
    alpha : float, default 0.1
        FDR level of independent filtering.
    cooks : bool, default True
        Flag (and where possible replace) count outliers by Cook's distance.
    independent_filter : bool, default True
        Independent filtering on the base mean before BH.
    n_jobs : int, default 1
        Threads over blocks of genes (-1: all cores).
    min_replicates_replace : int, default 7
        Cells (samples with equal model-matrix rows) with at least this many samples have
        outlier counts replaced.
    fit_type : {"parametric", "local", "mean"}, default "parametric"
        Dispersion trend.
    shrink : {None, "normal"}, default None
        Also compute normal-prior shrunken LFCs (:func:`shrink_normal_covariates`).

    Returns
    -------
    NativeFit
    """
    from ._native import NativeFit, _map, _n_jobs

    n_jobs = _n_jobs(n_jobs)
    des = CovariateDesign(ds.level_starts, ds.level_sizes, ds.covariates)
    Y = np.ascontiguousarray(ds.counts.T)
    G, m = Y.shape
    starts = ds.level_starts
    P = des.L - 1
    max_disp = float(max(10, m))
    sf = median_of_ratios(Y)
    base_mean, base_var = base_mean_var(Y, sf)
    all_zero = Y.sum(axis=1) == 0
    nz = np.flatnonzero(~all_zero)
    Ynz = Y[nz]
    bm_nz, bv_nz = base_mean[nz], base_var[nz]

    dg, dfit, dmap, dfinal, dout, trend, prior = _dispersions(
        Ynz, sf, des, bm_nz, bv_nz, max_disp, n_jobs, fit_type=fit_type)

    p = des.n_coef
    cutoff = cooks_cutoff(m, p) if m > p else np.inf
    cell_size = np.repeat(des.cell_sizes, des.cell_sizes)
    replaceable = cell_size >= min_replicates_replace
    cooks_samples = cell_size >= 3 if m > p else np.zeros(m, dtype=bool)
    b, c, conv, se_nz, mc, mc_rep, any_out, rep_out, out_mask = _glm_cooks(
        Ynz, sf, dfinal, des, cutoff, replaceable, cooks_samples, n_jobs)

    replaced = np.zeros(G, dtype=bool)
    now_zero = np.zeros(G, dtype=bool)
    if cooks and replaceable.any() and m > p and rep_out.any():
        rows = np.flatnonzero(rep_out)
        y_old = Ynz[rows]
        y_new = y_old.copy()
        mask = out_mask[rows] & replaceable[None, :]
        repl = replacement_counts(y_old / sf[None, :], sf)
        y_new[mask] = repl[mask]
        Ynz[rows] = y_new
        bm_new, bv_new = base_mean_var(y_new, sf)
        bm_nz[rows], bv_nz[rows] = bm_new, bv_new
        base_mean[nz[rows]] = bm_new
        zero_now = y_new.sum(axis=1) == 0
        now_zero[nz[rows[zero_now]]] = True
        fit_rows = rows[~zero_now]
        replaced[nz[rows]] = True
        if fit_rows.size:
            sub = _dispersions(Ynz[fit_rows], sf, des, bm_nz[fit_rows], bv_nz[fit_rows], max_disp, n_jobs,
                               trend=trend, prior=prior)
            dg[fit_rows], dfit[fit_rows], dmap[fit_rows], dfinal[fit_rows], dout[fit_rows] = sub[:5]
            b2, c2, cv2, se2, *_ = _glm_cooks(Ynz[fit_rows], sf, dfinal[fit_rows], des, cutoff, replaceable,
                                              cooks_samples, n_jobs)
            b[fit_rows], c[fit_rows], conv[fit_rows], se_nz[fit_rows] = b2, c2, cv2, se2
        # maxCooks after a refit: replaceable samples no longer count
        mc = np.full_like(mc, np.nan) if replaceable.all() else mc_rep

    lfc = np.full((P, G), np.nan)
    se = np.full((P, G), np.nan)
    lfc[:, nz] = b[:, 1:].T * LOG2E
    se[:, nz] = se_nz.T * LOG2E
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = lfc / se
    pvalue = 2.0 * ndtr(-np.abs(stat))
    # R's results(): every count of both compared levels is 0 -> log2FC 0, stat 0, p 1
    level_zero = np.add.reduceat(Y[nz], starts, axis=1) == 0
    contrast_zero = np.zeros((P, G), dtype=bool)
    contrast_zero[:, nz] = (level_zero[:, 1:] & level_zero[:, :1]).T
    lfc_mle = lfc.copy()
    lfc[contrast_zero] = 0.0
    stat[contrast_zero] = 0.0
    pvalue[contrast_zero] = 1.0

    max_cooks_full = np.full(G, np.nan)
    max_cooks_full[nz] = mc
    cooks_outlier = np.zeros(G, dtype=bool)
    if cooks:  # R's two-level exception needs a one-variable design; it does not apply here
        cooks_outlier[nz] = np.where(np.isfinite(mc), mc > cutoff, False)
        pvalue[:, cooks_outlier] = np.nan
    padj, thresholds = adjust_pvalues(lfc, se, stat, pvalue, base_mean, now_zero,
                                      independent_filter=independent_filter, alpha=alpha)

    def full(v):
        out = np.full(G, np.nan)
        out[nz] = v
        return out

    conv_full = np.zeros(G, dtype=bool)
    conv_full[nz] = conv
    any_full = np.zeros(G, dtype=bool)
    any_full[nz] = any_out
    shrunk = {}
    if shrink == "normal":
        shrunk = _shrink(ds, des, sf, dfinal, dfit, bm_nz, lfc_mle[:, nz], c, ~now_zero[nz], nz, G, P, _map, n_jobs)
        shrunk_results_rules(shrunk["lfc_shrunk"], shrunk["lfc_se_shrunk"], contrast_zero, now_zero)
    return NativeFit(
        size_factors=sf, base_mean=base_mean, all_zero=all_zero, disp_gene=full(dg), disp_fit=full(dfit),
        disp_map=full(dmap), disp_final=full(dfinal), disp_outlier=full(dout.astype(float)) == 1.0,
        trend=trend, prior_var=float(prior[0]), var_log_disp=float(prior[1]), max_cooks=max_cooks_full,
        cooks_outlier=cooks_outlier, replaced=replaced, lfc=lfc, lfc_se=se, stat=stat, pvalue=pvalue,
        padj=padj, filter_threshold=np.asarray(thresholds, dtype=float), converged=conv_full,
        contrast_zero=contrast_zero, any_cooks_outlier=any_full,
        extra={"covariate_coef": _full_rows(c, nz, G) * LOG2E, "n_cells": des.n_cells}, **shrunk,
    )


def _shrink(ds, des, sf, dfinal, dfit, bm_nz, lfc_mle_nz, c, keep, nz, G, P, _map, n_jobs):
    """Prior variances as ``estimateBetaPriorVar`` / ``averagePriorsOverLevels``, then the refit."""
    from ._native_shrink import beta_prior_var, weighted_upper_quantile_var

    ln2sq = np.log(2.0) ** 2
    bp = beta_prior_var(lfc_mle_nz[:, keep], bm_nz[keep], dfit[keep])
    De, terms = expanded_columns(ds)
    lam_dense = np.empty(De.shape[1])
    lam_dense[0] = 1.0 / (1e6 * ln2sq)
    cov_log2 = c[keep, 1:] * LOG2E
    w = 1.0 / (1.0 / bm_nz[keep] + dfit[keep])
    priors = {}
    for term, cols_e, cols_s, is_factor in terms:
        X = cov_log2[:, cols_s].T
        v = beta_prior_var(X, bm_nz[keep], dfit[keep]) if is_factor else float(weighted_upper_quantile_var(X, w)[0])
        lam_dense[cols_e] = 1.0 / (v * ln2sq)
        priors[term] = v
    Yorig = np.ascontiguousarray(ds.counts.T)[nz]

    def work(bl):
        lf, se = shrink_normal_covariates(Yorig[bl], sf, dfinal[bl], des, De, 1.0 / (bp * ln2sq), lam_dense)
        return lf.T, se.T

    ls, ss = _map(work, nz.size, Yorig.shape[1], n_jobs)
    lfc_s = np.full((P, G), np.nan)
    se_s = np.full((P, G), np.nan)
    lfc_s[:, nz] = ls.T
    se_s[:, nz] = ss.T
    return {"lfc_shrunk": lfc_s, "lfc_se_shrunk": se_s, "beta_prior_var": bp}


def _full_rows(v, nz, G):
    """Rows of ``v`` (non-zero genes) placed in a ``G``-row array of NaN."""
    out = np.full((G,) + v.shape[1:], np.nan)
    out[nz] = v
    return out
