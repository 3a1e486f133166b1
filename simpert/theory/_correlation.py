"""Closed forms for the noise-only correlation illusion (PEREGGRN design).

Design (one gene; genes independent): ``n_controls`` control samples with mean ``Ybar``,
``N_p`` perturbed training samples with mean ``Xbar`` and ``m`` test replicates of a held-out
perturbation with mean ``Zbar``; every sample carries independent noise of variance ``s^2``.
The mean baseline predicts the log fold change ``train mean - Ybar`` and the observed log fold
change is ``Zbar - Ybar``. When the controls are part of the training set (``n`` samples in all,
``N_p = n - n_controls``) the training mean is ``(n_c Ybar + N_p Xbar) / n``, so the prediction
is ``(N_p / n) (Xbar - Ybar)``; the positive factor does not change a correlation. When they are
not (``N_p = n``) the prediction is ``Xbar - Ybar``. Either way the only shared term is the
control noise, hence

    Cov = s^2 / n_c,   Var(pred) ~ s^2 (1/N_p + 1/n_c),   Var(obs) = s^2 (1/m + 1/n_c),
    rho = (1/n_c) / sqrt((1/N_p + 1/n_c) (1/m + 1/n_c)).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import hyp2f1, poch

from .._validation import Instance, Integer, Interval, OneOf, check, fail

__all__ = [
    "noise_only_rho",
    "noise_only_correlation",
    "effects_correlation",
    "effect_moments",
    "expected_sample_correlation",
]

_METHODS = ("pearson", "spearman")


def _n_perturbed(n: int, n_controls: int, controls_in_train: bool) -> int:
    check("n", n, Integer(1))
    check("n_controls", n_controls, Integer(1))
    check("controls_in_train", controls_in_train, Instance((bool,), "True or False"))
    if controls_in_train:
        if n - n_controls < 1:
            fail("n", f"larger than n_controls={n_controls} when controls_in_train=True "
                 "(the training set must hold at least one perturbed sample)", n)
        return n - n_controls
    return n


def noise_only_rho(n: int, n_controls: int = 1, m: int = 1, *, controls_in_train: bool = True) -> float:
    """Population correlation between predicted and observed LFC on noise-only data.

    The mean baseline predicts ``train mean - control mean``; the truth is ``test - control
    mean``. With no true effects the two share only the control noise, so

    .. math::

        \\rho = \\frac{1/n_c}{\\sqrt{(1/N_p + 1/n_c)\\,(1/m + 1/n_c)}},

    with ``N_p = n - n_c`` perturbed training samples when the controls are inside the
    training set of ``n`` samples, and ``N_p = n`` otherwise. For the PEREGGRN design
    (``n = 50, n_c = 1, m = 1``) this is ``sqrt((n - 1) / (2 n)) = 0.7``.

    Parameters
    ----------
    n : int
        Number of training samples (controls included when ``controls_in_train``).
    n_controls : int, default 1
        Number of control samples ``n_c``; their mean is the reference of both LFCs.
    m : int, default 1
        Number of test replicates averaged into the observed profile.
    controls_in_train : bool, default True
        Whether the controls are part of the training mean.

    Returns
    -------
    float
        The population correlation (over infinitely many genes).

    Notes
    -----
    Assumptions: independent noise of equal variance for every sample of a gene (the
    variance may differ between genes; the ratio does not depend on it), no true effects,
    test noise independent of training noise. The noise law does not matter for this
    population value (finite variance suffices).
    """
    n_p = _n_perturbed(n, n_controls, controls_in_train)
    check("m", m, Integer(1))
    c = 1.0 / n_controls
    return float(c / math.sqrt((1.0 / n_p + c) * (1.0 / m + c)))


def _expected_pearson(rho: float, g: int) -> float:
    # E[r] = rho * 2/(G-1) * [Gamma(G/2)/Gamma((G-1)/2)]^2 * 2F1(1/2, 1/2; (G+1)/2; rho^2)
    # The log gamma ratio log Gamma(x + 1/2) - log Gamma(x), x = (G-1)/2, is taken from
    # scipy.special.poch (accurate for any G) rather than a difference of two gammaln values,
    # which loses ~1e-16 * G log G in absolute terms for large G.
    x = (g - 1) / 2.0
    log_ratio = 2.0 * math.log(poch(x, 0.5)) - math.log(x)
    return float(rho * math.exp(log_ratio) * hyp2f1(0.5, 0.5, (g + 1) / 2.0, rho * rho))


def _expected_spearman(rho: float, g: int | None) -> float:
    if g is None:
        return float(6.0 / math.pi * math.asin(rho / 2.0))
    return float(6.0 / (math.pi * (g + 1)) * (math.asin(rho) + (g - 2) * math.asin(rho / 2.0)))


def expected_sample_correlation(rho: float, n_genes: int | None = None, *, method: str = "pearson") -> float:
    """Expected sample correlation over ``n_genes`` i.i.d. bivariate-normal pairs.

    Pearson (exact; Fisher / Hotelling):

    .. math::

        E[r] = \\rho \\, \\frac{2}{G-1} \\left[\\frac{\\Gamma(G/2)}{\\Gamma((G-1)/2)}\\right]^2
               {}_2F_1\\!\\left(\\tfrac12, \\tfrac12; \\tfrac{G+1}{2}; \\rho^2\\right)
             \\approx \\rho \\left(1 - \\frac{1 - \\rho^2}{2G}\\right),

    evaluated with the gamma ratio in log space (via :func:`scipy.special.poch`, accurate for
    any ``G``) and :func:`scipy.special.hyp2f1`.
    Spearman (Moran 1948, exact for bivariate normal pairs):

    .. math::

        E[r_s] = \\frac{6}{\\pi (G+1)} \\left[\\arcsin\\rho + (G-2) \\arcsin(\\rho/2)\\right].

    Parameters
    ----------
    rho : float
        Population (Pearson) correlation of the bivariate normal, in [-1, 1].
    n_genes : int or None, default None
        Number of pairs ``G`` (>= 2). None gives the population value: ``rho`` for Pearson,
        ``(6/pi) asin(rho/2)`` for Spearman.
    method : {"pearson", "spearman"}, default "pearson"

    Returns
    -------
    float
    """
    check("rho", rho, Interval(-1.0, 1.0))
    check("n_genes", n_genes, Integer(2, allow_none=True))
    check("method", method, OneOf(_METHODS))
    rho = float(rho)
    if method == "spearman":
        return _expected_spearman(rho, n_genes)
    if n_genes is None:
        return rho
    return _expected_pearson(rho, int(n_genes))


def noise_only_correlation(
    n: int = 50,
    n_controls: int = 1,
    m: int = 1,
    *,
    n_genes: int | None = None,
    method: str = "pearson",
    controls_in_train: bool = True,
) -> float:
    """Expected correlation of the mean baseline with the truth on noise-only data.

    Combines :func:`noise_only_rho` with :func:`expected_sample_correlation`: per gene the
    predicted and observed LFCs are bivariate normal with correlation ``rho``, so the
    expected sample Pearson correlation over ``G`` genes is the exact hypergeometric
    expression and the expected Spearman correlation is Moran's formula. For the PEREGGRN
    design (``n = 50, n_c = 1, m = 1``) the population value is 0.7, the expected Pearson
    over 100 genes 0.69818 and the expected Spearman 0.67729.

    Parameters
    ----------
    n : int, default 50
        Number of training samples (controls included when ``controls_in_train``).
    n_controls : int, default 1
        Number of control samples.
    m : int, default 1
        Number of test replicates averaged into the observed profile.
    n_genes : int or None, default None
        Number of genes the correlation is computed over; None gives the population value.
    method : {"pearson", "spearman"}, default "pearson"
    controls_in_train : bool, default True
        Whether the controls are part of the training mean.

    Returns
    -------
    float

    Notes
    -----
    Assumptions: Gaussian noise, independent between samples and genes, with the same
    variance for all genes (for the sample correlation the gene pairs must be i.i.d.
    bivariate normal); no true effects. Each test sample's correlation has this
    expectation, so the mean over test samples does too (they are dependent through the
    shared control, which widens the spread but not the mean).

    Examples
    --------
    >>> round(noise_only_correlation(n=50, n_controls=1, m=1), 10)
    0.7
    """
    rho = noise_only_rho(n, n_controls, m, controls_in_train=controls_in_train)
    return expected_sample_correlation(rho, n_genes, method=method)


def effect_moments(train_effects, test_effects) -> dict:
    """Across-gene moments of true effects, as keyword arguments of :func:`effects_correlation`.

    Parameters
    ----------
    train_effects : array-like, shape (G,) or (N_p, G)
        Mean true effect of the training perturbations per gene (``Dbar``), or the effects
        of each perturbed training sample (rows), which are averaged.
    test_effects : array-like, shape (G,)
        True effect of the held-out perturbation per gene (``D_test``).

    Returns
    -------
    dict
        ``var_train`` = Var_g(Dbar), ``var_test`` = Var_g(D_test) and ``cov`` =
        Cov_g(Dbar, D_test), all with the 1/G (population) normalisation.
    """
    tr = np.asarray(train_effects, dtype=float)
    te = np.asarray(test_effects, dtype=float)
    if tr.ndim == 2:
        tr = tr.mean(axis=0)
    if tr.ndim != 1 or not np.all(np.isfinite(tr)):
        fail("train_effects", "a finite 1-d or 2-d numeric array", train_effects)
    if te.shape != tr.shape or not np.all(np.isfinite(te)):
        fail("test_effects", f"a finite 1-d numeric array with {tr.shape[0]} entries", test_effects)
    dt, dd = tr - tr.mean(), te - te.mean()
    return {"var_train": float(dt @ dt / dt.size), "var_test": float(dd @ dd / dd.size),
            "cov": float(dt @ dd / dt.size)}


def effects_correlation(
    n: int = 50,
    n_controls: int = 1,
    m: int = 1,
    *,
    var_train: float = 0.0,
    var_test: float = 0.0,
    cov: float = 0.0,
    noise_var: float = 1.0,
    controls_in_train: bool = True,
    n_genes: int | None = None,
    method: str = "pearson",
) -> float:
    """Correlation of the mean baseline with the truth when there are true effects.

    Population value (genes as draws; effects fixed per gene, noise independent of them):

    .. math::

        \\mathrm{Corr} = \\frac{\\mathrm{Cov}_g(\\bar D, D_t) + \\bar s^2 / n_c}
        {\\sqrt{[\\mathrm{Var}_g \\bar D + \\bar s^2 (1/N_p + 1/n_c)]
                [\\mathrm{Var}_g D_t + \\bar s^2 (1/m + 1/n_c)]}},

    where ``Dbar`` is the mean true effect of the perturbed training samples, ``D_t`` that of
    the held-out perturbation and ``sbar^2`` the mean noise variance over genes. With all
    effect moments zero it reduces to :func:`noise_only_rho`. When ``n_genes`` is given,
    this correlation is fed to :func:`expected_sample_correlation`, which is exact when the
    effects are jointly Gaussian across genes (so that gene pairs are i.i.d. bivariate
    normal) and the noise is Gaussian with one variance for all genes.

    Parameters
    ----------
    n : int, default 50
        Number of training samples (controls included when ``controls_in_train``).
    n_controls : int, default 1
    m : int, default 1
        Test replicates averaged into the observed profile.
    var_train, var_test, cov : float, default 0
        Across-gene variance of ``Dbar``, of ``D_t`` and their covariance (see
        :func:`effect_moments`); ``cov^2 <= var_train * var_test``.
    noise_var : float, default 1
        Mean noise variance over genes ``sbar^2`` (> 0).
    controls_in_train : bool, default True
    n_genes : int or None, default None
        None gives the population correlation.
    method : {"pearson", "spearman"}, default "pearson"

    Returns
    -------
    float
    """
    n_p = _n_perturbed(n, n_controls, controls_in_train)
    check("m", m, Integer(1))
    check("var_train", var_train, Interval(0.0))
    check("var_test", var_test, Interval(0.0))
    check("cov", cov, Interval())
    check("noise_var", noise_var, Interval(0.0, closed="neither"))
    if cov * cov > var_train * var_test * (1 + 1e-12) + 1e-300:
        fail("cov", f"at most sqrt(var_train * var_test) = {math.sqrt(var_train * var_test):.6g} "
             "in absolute value", cov)
    s2, c = float(noise_var), 1.0 / n_controls
    num = cov + s2 * c
    den = math.sqrt((var_train + s2 * (1.0 / n_p + c)) * (var_test + s2 * (1.0 / m + c)))
    rho = min(1.0, max(-1.0, num / den))
    return expected_sample_correlation(rho, n_genes, method=method)
