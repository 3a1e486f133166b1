"""The noise-only design of PEREGGRN (Kernfeld et al. 2025), generalised."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from .._random import as_seed_sequence, seed_record
from ._engine import fresh
from ._params import NoiseOnlyParams
from ._screen import _version, gene_names

__all__ = ["noise_only"]


def noise_only(
    n: int = 100,
    n_genes: int = 100,
    *,
    n_controls: int = 1,
    controls_in_train: bool = True,
    n_train: int = 50,
    m: int = 1,
    noise: str = "gaussian",
    sigma: float = 1.0,
    effect_sd: float = 0.0,
    mean: float = 10.0,
    dispersion: float = 0.1,
    control_label: str = "control",
    rng=None,
) -> ad.AnnData:
    """Simulate the noise-only design: samples that differ by noise (and optional effects).

    Rows, in order: ``n_controls`` controls (role "control"); the perturbed training samples
    (role "train"), ``n_train - n_controls`` of them when ``controls_in_train`` else
    ``n_train``; then the test perturbations (role "test"), each with ``m`` replicate rows.
    With the defaults this is the PEREGGRN design: a 100 x 100 standard normal matrix,
    row 1 the control, rows 1..50 the training set, rows 51..100 the test samples.

    Parameters
    ----------
    n, n_genes, n_controls, controls_in_train, n_train, m, noise, sigma, effect_sd, mean, dispersion, control_label
        See :class:`NoiseOnlyParams`.
    rng : None, int, SeedSequence or Generator
        Randomness.

    Returns
    -------
    AnnData
        ``.X``: dense float64 (Gaussian; value = effect + noise) or int64 counts (NB with
        mean ``mean * 2^effect``). ``obs``: ``perturbation``, ``is_control``, ``target``
        (""), ``role``, ``replicate``. ``uns["simpert"]["truth"]["log2fc"]``: the true
        effects per perturbation x gene (zero when ``effect_sd == 0``; on the data scale
        for Gaussian noise, log2 for NB).
    """
    p = NoiseOnlyParams(n=n, n_genes=n_genes, n_controls=n_controls, controls_in_train=controls_in_train,
                        n_train=n_train, m=m, noise=noise, sigma=sigma, effect_sd=effect_sd, mean=mean,
                        dispersion=dispersion, control_label=control_label)
    ss = as_seed_sequence(rng)
    s_noise, s_eff = fresh(ss).spawn(2)
    G = p.n_genes
    n_tr, n_te = p.n_train_perturbations, p.n_test
    train_names = [f"train{i:03d}" for i in range(n_tr)]
    test_names = [f"test{i:03d}" for i in range(n_te)]
    perts = train_names + test_names
    labels = [p.control_label] * p.n_controls + train_names + [t for t in test_names for _ in range(p.m)]
    roles = ["control"] * p.n_controls + ["train"] * n_tr + ["test"] * (n_te * p.m)
    reps = list(range(p.n_controls)) + [0] * n_tr + [r for _ in test_names for r in range(p.m)]
    n_rows = len(labels)
    g_eff = np.random.default_rng(s_eff)
    effects = g_eff.standard_normal((len(perts), G)) * p.effect_sd
    row_pert = np.array([-1] * p.n_controls + list(range(n_tr)) + [n_tr + i for i in range(n_te) for _ in range(p.m)])
    row_eff = np.where(row_pert[:, None] >= 0, effects[np.maximum(row_pert, 0)], 0.0)
    g = np.random.default_rng(s_noise)
    if p.noise == "gaussian":
        X = row_eff + p.sigma * g.standard_normal((n_rows, G))
        if not np.all(np.isfinite(X)):
            raise ValueError("parameters 'sigma' and 'effect_sd' must give finite values; got "
                             "non-finite samples (use smaller values)")
    else:
        with np.errstate(over="ignore"):
            mu = p.mean * np.exp2(row_eff)
        if not np.all(mu < 2.0 ** 53):
            raise ValueError(
                "parameters 'mean' and 'effect_sd' must keep every expected count below 2^53; got "
                f"expected counts up to {float(np.max(mu)):.3g}"
            )
        if p.dispersion > 0:
            lam = g.standard_gamma(1.0 / p.dispersion, size=(n_rows, G)) * (p.dispersion * mu)
        else:
            lam = mu
        if not np.all(lam < 2.0 ** 53):
            raise ValueError(
                "parameters 'mean', 'effect_sd' and 'dispersion' must keep every gamma-Poisson rate "
                f"below 2^53; got rates up to {float(np.max(lam)):.3g}"
            )
        X = g.poisson(lam).astype(np.int64)
    genes = gene_names(G).astype(str)
    obs = pd.DataFrame(
        {
            "perturbation": pd.Categorical(labels, categories=[p.control_label] + perts),
            "is_control": np.array(roles) == "control",
            "target": np.array([""] * n_rows, dtype=object),
            "role": pd.Categorical(roles, categories=["control", "train", "test"]),
            "replicate": np.array(reps, dtype=np.int64),
        },
        index=pd.Index([f"sample{i:04d}" for i in range(n_rows)]),
    )
    var = pd.DataFrame({"base_mean": np.full(G, 0.0 if p.noise == "gaussian" else p.mean),
                        "dispersion": np.full(G, 0.0 if p.noise == "gaussian" else p.dispersion),
                        "is_regulator": np.zeros(G, dtype=bool)}, index=pd.Index(genes))
    truth = {
        "perturbations": np.asarray(perts, dtype=str),
        "genes": genes,
        "targets": np.asarray([""] * len(perts), dtype=str),
        "target_index": np.full(len(perts), -1, dtype=np.int64),
        "log2fc": effects,
        "specific_log2fc": effects.copy(),
        "shared_log2fc": np.zeros(G),
        "roles": np.asarray(["train"] * n_tr + ["test"] * n_te, dtype=str),
    }
    uns = {"simpert": {"kind": "noise_only", "control": p.control_label, "version": _version(),
                       "seed": seed_record(ss), "params": p.to_dict(), "truth": truth}}
    return ad.AnnData(X=X, obs=obs, var=var, uns=uns)
