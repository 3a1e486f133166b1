"""Technical duplicates and expected counts of simulated count data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp

from .._random import as_seed_sequence, seed_record
from .._validation import Instance, check, fail
from ._engine import Design, draw_counts, expected_matrix, model_from_uns
from ._pseudobulk import design_from_obs, program_activity

__all__ = ["redraw", "expected_counts"]


def _count_record(adata) -> dict:
    check("adata", adata, Instance((ad.AnnData,), "an AnnData"))
    rec = adata.uns.get("simpert") if hasattr(adata, "uns") else None
    if not isinstance(rec, dict) or "count_model" not in rec:
        fail("adata", "a count AnnData simulated by simpert.sim.screen or var_network(output='counts')",
             "an AnnData without uns['simpert']['count_model']")
    return rec


def _stored_design(rec: dict):
    d = rec["design"]
    design = Design(group=np.asarray(d["group"], np.int64), guide=np.asarray(d["guide"], np.int64),
                    replicate=np.asarray(d["replicate"], np.int64),
                    batch=np.asarray(d["batch"], np.int64) if "batch" in d else None,
                    context=np.asarray(d["context"], np.int64) if "context" in d else None)
    if "second_group" in d:
        design.second_group = np.asarray(d["second_group"], np.int64)
        design.second_guide = np.asarray(d["second_guide"], np.int64)
        design.no_guide = np.asarray(d["no_guide"], bool)
    return design, np.asarray(d["sample"], np.int64)


def redraw(adata: ad.AnnData, *, rng=None) -> ad.AnnData:
    """An independent draw of the same simulated screen: the technical duplicate.

    Keeps the truth and the design (the same cells per perturbation, guide and replicate,
    the same gene means and dispersions) and draws new noise: library sizes, escapers, KO
    editing and counts.

    Parameters
    ----------
    adata : AnnData
        Output of :func:`screen` or ``var_network(output="counts")``, cells or pseudobulk;
        or a planted screen from ``plant(..., duplicate=True)``, whose duplicate (fixed at
        planting, from a disjoint set of the user's cells) is returned whatever ``rng``.
    rng : None, int, SeedSequence or Generator
        Randomness of the new draw.

    Returns
    -------
    AnnData
        Same obs names, var and truth; new counts and per-cell noise columns.
    """
    meta = adata.uns.get("simpert") if isinstance(adata, ad.AnnData) else None
    if hasattr(meta, "get") and meta.get("kind") == "planted":
        from ._plant import planted_duplicate

        return planted_duplicate(adata)
    rec = _count_record(adata)
    model = model_from_uns(adata)
    ss = as_seed_sequence(rng)
    out_uns = dict(adata.uns)
    new_rec = dict(rec)
    new_rec["redraw_seed"] = seed_record(ss)
    if "design" in rec:  # pseudobulk
        design, sample = _stored_design(rec)
        X, noise = draw_counts(model, design, ss, sample=sample, n_samples=adata.n_obs)
        d = dict(rec["design"])
        d.update(size_factor=noise["size_factor"], knockdown=noise["knockdown"], escaped=noise["escaped"])
        if "activity" in noise:
            d["activity"] = noise["activity"]
        if "knockdown2" in noise:
            d["knockdown2"] = noise["knockdown2"]
        new_rec["design"] = d
        out_uns["simpert"] = new_rec
        return ad.AnnData(X=X, obs=adata.obs.copy(), var=adata.var.copy(), uns=out_uns)
    design = design_from_obs(adata.obs, rec)
    X, noise = draw_counts(model, design, ss)
    obs = adata.obs.copy()
    for k in ("size_factor", "knockdown", "escaped"):
        if k in obs:
            obs[k] = noise[k]
    if "activity" in noise:
        for j in range(noise["activity"].shape[1]):
            obs[f"program_{j}"] = noise["activity"][:, j]
    if "knockdown2" in noise and "second_knockdown" in obs:
        obs["second_knockdown"] = noise["knockdown2"]
    out_uns["simpert"] = new_rec
    return ad.AnnData(X=X, obs=obs, var=adata.var.copy(), uns=out_uns)


def expected_counts(adata: ad.AnnData) -> np.ndarray:
    """Expected count per observation and gene given the realised per-cell design.

    For cells, ``E[X_cg | size factor, guide, escape, editing]`` as used by the simulator
    (the NB mean); for pseudobulk samples the sum of that over the sample's cells. A dense
    float64 array of shape ``(n_obs, n_genes)``: use it as an oracle or to check the
    simulator.

    Parameters
    ----------
    adata : AnnData
        Output of :func:`screen`, ``var_network(output="counts")``, :func:`redraw` or
        :func:`pseudobulk` of those.

    Returns
    -------
    ndarray of float64, shape (n_obs, n_genes)
    """
    rec = _count_record(adata)
    model = model_from_uns(adata)
    if "design" in rec:
        design, sample = _stored_design(rec)
        d = rec["design"]
        mu = expected_matrix(model, design, d["size_factor"], np.asarray(d["escaped"], bool), d["knockdown"],
                             activity=d.get("activity"), knockdown2=d.get("knockdown2"))
        ind = sp.csr_matrix((np.ones(sample.shape[0]), (sample, np.arange(sample.shape[0]))),
                            shape=(adata.n_obs, sample.shape[0]))
        return np.asarray(ind @ mu)
    design = design_from_obs(adata.obs, rec)
    return expected_matrix(model, design, adata.obs["size_factor"].to_numpy(float),
                           adata.obs["escaped"].to_numpy(bool), adata.obs["knockdown"].to_numpy(float),
                           activity=program_activity(adata.obs, rec),
                           knockdown2=adata.obs["second_knockdown"].to_numpy(float)
                           if "second_knockdown" in adata.obs else None)
