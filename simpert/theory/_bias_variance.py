"""Bias-variance closed forms for the baselines (PEREGGRN Additional File 2; "mse_of_de").

Model, per gene (genes independent): ``C`` controls ``Y_c = M + e``, ``N`` perturbed training
samples ``X_i = M + D_J(i) + e`` (each of some training perturbation ``J(i)``), a held-out
perturbation observed with ``m`` replicates ``Z = M + D_G + e``; all noise ``e`` independent
with variance ``s^2``. ``Dbar`` is the mean of the training effects and, when the controls
are in the training set, the all-training mean weights the perturbed samples by
``w = N / (C + N)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._validation import ArrayLike, Instance, Integer, check, fail
from ._genes import gene_arrays
from ._table import TheorySummary

__all__ = [
    "BaselineMSE",
    "EffectEstimatorMSE",
    "EmbeddingError",
    "baseline_mse",
    "effect_estimator_mse",
    "embedding_error",
]


def _check_counts(n_controls, n_perturbed, m) -> None:
    check("n_controls", n_controls, Integer(1))
    check("n_perturbed", n_perturbed, Integer(1))
    check("m", m, Integer(1))


@dataclass(frozen=True)
class BaselineMSE:
    """Expected squared errors of the control-mean and all-training-mean baselines.

    Attributes
    ----------
    control, mean : ndarray, shape (G,)
        Expected squared error per gene of predicting the held-out profile ``Zbar`` by the
        control mean / by the all-training mean.
    control_bias, mean_bias : ndarray, shape (G,)
        ``E[prediction - Zbar]`` per gene.
    control_variance, mean_variance : ndarray, shape (G,)
        ``Var(prediction - Zbar)`` per gene (observation noise ``s^2/m`` included).
    level_control, level_mean : ndarray, shape (G,)
        Mean squared error of each as an estimate of the control level ``M``.
    crossover : ndarray of bool, shape (G,)
        Genes where the all-training mean estimates ``M`` better:
        ``Dbar^2 < s^2 (1/C + 1/N)`` (controls in training) or ``Dbar^2 < s^2 (1/C - 1/N)``.
    params : dict
        The inputs.
    """

    control: np.ndarray
    mean: np.ndarray
    control_bias: np.ndarray
    mean_bias: np.ndarray
    control_variance: np.ndarray
    mean_variance: np.ndarray
    level_control: np.ndarray
    level_mean: np.ndarray
    crossover: np.ndarray
    params: dict

    @property
    def control_total(self) -> float:
        """Expected sum of squared errors over genes, control-mean baseline."""
        return float(self.control.sum())

    @property
    def mean_total(self) -> float:
        """Expected sum of squared errors over genes, all-training-mean baseline."""
        return float(self.mean.sum())

    @property
    def mean_wins(self) -> np.ndarray:
        """Genes where the all-training mean has the smaller expected squared error."""
        return self.mean < self.control

    def summary(self) -> TheorySummary:
        """Totals over genes and the share of genes where each side of the crossover holds."""
        tab = pd.DataFrame(
            {
                "E[SSE] held-out": [self.control_total, self.mean_total],
                "sum bias^2": [float((self.control_bias**2).sum()), float((self.mean_bias**2).sum())],
                "sum variance": [float(self.control_variance.sum()), float(self.mean_variance.sum())],
                "MSE for M (sum)": [float(self.level_control.sum()), float(self.level_mean.sum())],
            },
            index=pd.Index(["control mean", "all-training mean"], name="baseline"),
        )
        p = self.params
        notes = (
            f"C={p['n_controls']} controls, N={p['n_perturbed']} perturbed training samples, "
            f"m={p['m']} test replicates, controls_in_train={p['controls_in_train']}, "
            f"G={self.control.size} genes",
            "E[SE|control] = D_G^2 + s^2/C + s^2/m;  "
            "E[SE|mean] = (D_G - w Dbar)^2 + s^2/(C+N) + s^2/m",
            f"all-training mean better for M (Dbar^2 < s^2(1/C + 1/N)) in "
            f"{int(self.crossover.sum())} of {self.crossover.size} genes; "
            f"better for the held-out profile in {int(self.mean_wins.sum())}",
        )
        return TheorySummary("Baseline squared error (control mean vs all-training mean)", tab, notes)


def baseline_mse(
    d_test,
    d_train_mean=0.0,
    *,
    noise_var=1.0,
    n_controls: int = 1,
    n_perturbed: int = 49,
    m: int = 1,
    controls_in_train: bool = True,
) -> BaselineMSE:
    """Expected squared error of the control-mean vs the all-training-mean prediction.

    Under the module's model, with ``w = N/(C+N)`` when the controls are part of the
    training mean (``w = 1`` and variance ``s^2/N`` otherwise):

    - estimating the control level ``M``: the control mean has bias 0 and variance
      ``s^2/C``; the all-training mean has bias ``w Dbar`` and variance ``s^2/(C+N)``; the
      all-training mean has the smaller MSE iff ``Dbar^2 < s^2 (1/C + 1/N)``
      (``Dbar^2 < s^2 (1/C - 1/N)`` without the controls);
    - predicting a held-out perturbation ``G`` observed with ``m`` replicates:

      ``E[SE | control mean] = D_G^2 + s^2/C + s^2/m``,
      ``E[SE | all-training mean] = (D_G - w Dbar)^2 + s^2/(C+N) + s^2/m``.

    Squared errors of log fold changes taken against the same control mean equal these
    (the reference cancels in ``prediction - truth``).

    Parameters
    ----------
    d_test : float or array-like, shape (G,)
        True effect ``D_G`` of the held-out perturbation per gene.
    d_train_mean : float or array-like, shape (G,), default 0
        Mean true effect ``Dbar`` of the perturbed training samples per gene.
    noise_var : float or array-like, shape (G,), default 1
        Noise variance ``s^2`` per gene (> 0).
    n_controls : int, default 1
        ``C``.
    n_perturbed : int, default 49
        ``N``, perturbed training samples.
    m : int, default 1
        Replicates of the held-out perturbation averaged into its profile.
    controls_in_train : bool, default True
        Whether the all-training mean includes the controls.

    Returns
    -------
    BaselineMSE
        Per-gene arrays; ``control_total`` / ``mean_total`` sum over genes.

    Notes
    -----
    Assumptions: additive independent noise with finite variance (any law), effects fixed,
    the held-out replicates independent of the training data. No normality is needed.
    """
    _check_counts(n_controls, n_perturbed, m)
    check("controls_in_train", controls_in_train, Instance((bool,), "True or False"))
    d_g, dbar, s2 = gene_arrays(("noise_var",), d_test=d_test, d_train_mean=d_train_mean,
                                noise_var=noise_var)
    c, n = n_controls, n_perturbed
    if controls_in_train:
        w, var_mean = n / (c + n), s2 / (c + n)
        cross = dbar**2 < s2 * (1.0 / c + 1.0 / n)
    else:
        w, var_mean = 1.0, s2 / n
        cross = dbar**2 < s2 * (1.0 / c - 1.0 / n)
    obs = s2 / m
    control_bias = np.zeros_like(d_g) - d_g
    mean_bias = w * dbar - d_g
    control_var = s2 / c + obs
    mean_var = var_mean + obs
    return BaselineMSE(
        control=control_bias**2 + control_var,
        mean=mean_bias**2 + mean_var,
        control_bias=control_bias,
        mean_bias=mean_bias,
        control_variance=control_var,
        mean_variance=mean_var,
        level_control=s2 / c,
        level_mean=(w * dbar) ** 2 + var_mean,
        crossover=cross,
        params=dict(n_controls=c, n_perturbed=n, m=m, controls_in_train=controls_in_train),
    )


@dataclass(frozen=True)
class EffectEstimatorMSE:
    """Bias, variance and MSE of the simple and the centroid effect estimators.

    Attributes
    ----------
    simple_bias, centroid_bias : ndarray, shape (G,)
        ``E[estimate] - D_G``: 0 for ``Zbar - Ybar``, ``-Dbar`` for ``Zbar - Xbar``.
    simple_variance, centroid_variance : ndarray, shape (G,)
        ``s^2 (1/m + 1/C)`` and ``s^2 (1/m + 1/N)``.
    simple, centroid : ndarray, shape (G,)
        Mean squared errors (bias^2 + variance).
    params : dict
        The inputs.
    """

    simple_bias: np.ndarray
    centroid_bias: np.ndarray
    simple_variance: np.ndarray
    centroid_variance: np.ndarray
    simple: np.ndarray
    centroid: np.ndarray
    params: dict

    @property
    def simple_total(self) -> float:
        """Sum over genes of the simple estimator's MSE."""
        return float(self.simple.sum())

    @property
    def centroid_total(self) -> float:
        """Sum over genes of the centroid estimator's MSE."""
        return float(self.centroid.sum())

    @property
    def centroid_wins(self) -> np.ndarray:
        """Genes where the centroid estimator has the smaller MSE:
        ``Dbar^2 < s^2 (1/C - 1/N)``."""
        return self.centroid < self.simple

    def summary(self) -> TheorySummary:
        """Totals over genes for both estimators."""
        tab = pd.DataFrame(
            {
                "mean bias": [float(self.simple_bias.mean()), float(self.centroid_bias.mean())],
                "sum bias^2": [float((self.simple_bias**2).sum()), float((self.centroid_bias**2).sum())],
                "sum variance": [float(self.simple_variance.sum()), float(self.centroid_variance.sum())],
                "sum MSE": [self.simple_total, self.centroid_total],
            },
            index=pd.Index(["simple Zbar - Ybar", "centroid Zbar - Xbar"], name="estimator"),
        )
        p = self.params
        notes = (
            f"C={p['n_controls']} controls, N={p['n_perturbed']} perturbed training samples, "
            f"m={p['m']} treated replicates, G={self.simple.size} genes",
            "bias(centroid) = -Dbar relative to D_G (0 relative to the centred target D_G - Dbar)",
            f"centroid better in {int(self.centroid_wins.sum())} of {self.simple.size} genes",
        )
        return TheorySummary("Effect estimators: simple vs centroid reference", tab, notes)


def effect_estimator_mse(
    d_train_mean=0.0,
    *,
    noise_var=1.0,
    n_controls: int = 1,
    n_perturbed: int = 49,
    m: int = 1,
) -> EffectEstimatorMSE:
    """MSE of estimating an effect ``D_G`` against the controls or the perturbed centroid.

    ``m`` treated samples ``Z`` of perturbation ``G``; ``C`` controls ``Y``; ``N`` perturbed
    training samples ``X`` (the Systema-style reference). Under the module's model:

    - simple ``Zbar - Ybar``: unbiased, variance ``s^2 (1/m + 1/C)``;
    - centroid ``Zbar - Xbar``: expectation ``D_G - Dbar``, so its bias as an estimate of
      ``D_G`` is ``-Dbar``; variance ``s^2 (1/m + 1/N)``.

    The centroid estimator has the smaller MSE iff ``Dbar^2 < s^2 (1/C - 1/N)``. (The
    "mse_of_de" blog writes the bias as ``(1/N) sum D_J(i) - D_G``; under the model that is
    minus the estimator's expectation, not its bias: the bias is ``E[Zbar - Xbar] - D_G =
    -Dbar``, and the Monte Carlo validator confirms the sign.) Relative to the centred
    target ``D_G - Dbar`` the centroid estimator is unbiased.

    Parameters
    ----------
    d_train_mean : float or array-like, shape (G,), default 0
        ``Dbar`` per gene.
    noise_var : float or array-like, shape (G,), default 1
        ``s^2`` per gene.
    n_controls : int, default 1
        ``C``.
    n_perturbed : int, default 49
        ``N``.
    m : int, default 1
        Treated samples of the perturbation (the reference text uses ``m = C``).

    Returns
    -------
    EffectEstimatorMSE

    Notes
    -----
    Assumptions: additive independent noise with finite variance, effects fixed, the
    treated samples independent of the training data. The estimation error does not depend
    on ``D_G``.
    """
    _check_counts(n_controls, n_perturbed, m)
    dbar, s2 = gene_arrays(("noise_var",), d_train_mean=d_train_mean, noise_var=noise_var)
    sb = np.zeros_like(dbar)
    cb = -dbar
    sv = s2 * (1.0 / m + 1.0 / n_controls)
    cv = s2 * (1.0 / m + 1.0 / n_perturbed)
    return EffectEstimatorMSE(
        simple_bias=sb, centroid_bias=cb, simple_variance=sv, centroid_variance=cv,
        simple=sb**2 + sv, centroid=cb**2 + cv,
        params=dict(n_controls=n_controls, n_perturbed=n_perturbed, m=m),
    )


@dataclass(frozen=True)
class EmbeddingError:
    """Expected squared error of a prediction after projection onto a low-dimensional basis.

    Attributes
    ----------
    bias_term : float
        ``||W' b||^2``.
    variance_term : float
        ``sum_g s_g^2 (1/n_est + 1/m) ||W_g||^2`` (``k s^2 (1/n_est + 1/m)`` for an
        orthonormal basis and one noise variance).
    total : float
        ``bias_term + variance_term``.
    full_bias_term, full_variance_term, full_total : float
        The same in the full gene space (``W = I``).
    k : int
        Embedding dimension.
    """

    bias_term: float
    variance_term: float
    total: float
    full_bias_term: float
    full_variance_term: float
    full_total: float
    k: int

    def summary(self) -> TheorySummary:
        """Embedded vs full-space error, split into bias and variance."""
        tab = pd.DataFrame(
            {"bias^2": [self.bias_term, self.full_bias_term],
             "variance": [self.variance_term, self.full_variance_term],
             "total": [self.total, self.full_total]},
            index=pd.Index([f"embedding (k={self.k})", "all genes"], name="space"),
        )
        notes = ("E||W'(P - Z)||^2 = ||W'b||^2 + tr(W' Sigma W), Sigma = diag(s^2)(1/n_est + 1/m)",)
        return TheorySummary("Error in a low-dimensional embedding", tab, notes)


def embedding_error(bias, basis, *, noise_var=1.0, n_est: int = 1, m: int = 1) -> EmbeddingError:
    """Expected squared distance between prediction and truth in a fixed linear embedding.

    A prediction ``P = mu + b + u`` (``u`` noise of variance ``s_g^2 / n_est`` per gene, e.g.
    a mean over ``n_est`` samples) is compared with an observation ``Z = mu + v`` (``v`` of
    variance ``s_g^2 / m``) after projection by ``W`` (``G x k``):

    .. math::

        E\\,\\|W^\\top (P - Z)\\|^2 = \\|W^\\top b\\|^2
            + \\sum_g s_g^2 \\left(\\frac{1}{n_{est}} + \\frac{1}{m}\\right) \\|W_{g\\cdot}\\|^2,

    which for an orthonormal ``W`` and one noise variance is ``||W'b||^2 + k s^2 (1/n_est
    + 1/m)``: the noise shrinks from ``G`` to ``k`` dimensions while bias lying in the span of
    ``W`` (e.g. the top principal components, where systematic shifts live) stays whole.
    For the all-training mean baseline use ``b = w Dbar - D_G`` and ``n_est = C + N``.

    Parameters
    ----------
    bias : array-like, shape (G,)
        ``E[P] - E[Z]`` per gene.
    basis : array-like, shape (G, k) or (G,)
        The embedding ``W`` (fixed: not estimated from the same noisy data).
    noise_var : float or array-like, shape (G,), default 1
        ``s_g^2``.
    n_est : int, default 1
        Samples averaged into the prediction.
    m : int, default 1
        Samples averaged into the observation.

    Returns
    -------
    EmbeddingError

    Notes
    -----
    Assumptions: prediction and observation noise independent of each other and across
    genes, finite variances (any law); ``W`` independent of the noise. Basis estimated
    from the same data (as PEREGGRN's 20 training PCs) makes this an approximation.
    """
    check("basis", basis, ArrayLike())
    w = np.asarray(basis, dtype=float)
    if w.ndim == 1:
        w = w[:, None]
    if w.ndim != 2:
        fail("basis", "a finite (G, k) numeric array", basis)
    check("n_est", n_est, Integer(1))
    check("m", m, Integer(1))
    b, s2 = gene_arrays(("noise_var",), bias=bias, noise_var=noise_var)
    if b.size == 1 and w.shape[0] != 1:
        b = np.broadcast_to(b, (w.shape[0],))
    if s2.size == 1:
        s2 = np.broadcast_to(s2, b.shape)
    if b.shape[0] != w.shape[0] or s2.shape[0] != w.shape[0]:
        fail("basis", f"a (G, k) array with G = {b.shape[0]} rows (the length of 'bias')", basis)
    proj = w.T @ b
    scale = s2 * (1.0 / n_est + 1.0 / m)
    bias_term = float(proj @ proj)
    var_term = float(scale @ np.einsum("gk,gk->g", w, w))
    full_b, full_v = float(b @ b), float(scale.sum())
    return EmbeddingError(bias_term, var_term, bias_term + var_term, full_b, full_v, full_b + full_v,
                          int(w.shape[1]))
