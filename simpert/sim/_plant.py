"""Semi-synthetic screens: known effects planted into a user's control cells.

The user's control cells (raw counts) are assigned at random to pseudo-perturbations and to
a held-out control group; the log2 fold changes of a screen drawn as in
:func:`simpert.sim.screen` (targets, guide efficiencies, escapers, sparse specific effects,
shared systematic response) are then planted by binomial thinning: each count ``x`` of cell
``c``, gene ``g`` becomes ``Binomial(x, 2^(l_cg - M_g))``, where ``l_cg`` is the cell's log2
effect (0 for controls) and ``M_g`` the largest effect any cell can carry on gene ``g``
(at least 0), so every thinning probability is at most 1. Thinning a count whose mean is
``mu`` gives mean ``mu 2^(l - M)`` and keeps everything else of the real data: its
dispersion, its zeros beyond the negative binomial, its gene-gene correlation and its
library-size law. The common factor ``2^-M_g`` (controls are thinned too) cancels in every
ratio, so the planted log2 fold change is ``l`` averaged over the cells as in ``screen``.

Followed: seqgendiff (Gerard 2020, "Data-based RNA-seq simulations by binomial thinning",
BMC Bioinformatics 21:206), file ``R/genthin.R``: ``thin_base`` (``qmat <- 2^(meanmat -
maxvec)`` with ``maxvec`` the per-gene maximum, then ``rbinom(size = mat, prob = qmat)``)
and ``thin_diff`` (design x coefficients -> ``thin_base`` with ``relative = TRUE``).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._random import as_seed_sequence, seed_record
from .._validation import Instance, Integer, Interval, check, fail
from ._engine import CountModel, cell_noise, fresh, target_factor
from ._params import ScreenParams
from ._screen import STREAMS, _draw_design, _draw_truth, check_finite

__all__ = ["plant", "planted_duplicate", "EFFECT_FIELDS", "PLANT_STREAMS"]

#: Fields of :class:`ScreenParams` that :func:`plant` accepts (the rest describe the noise,
#: which comes from the user's cells).
EFFECT_FIELDS = (
    "unmeasured_targets", "cell_count_dispersion", "min_cells", "modality", "n_guides", "efficiency_a",
    "efficiency_b", "escape_rate", "ko_residual", "activation_fold", "p_effect", "effect_size", "effect_sd",
    "systematic_strength", "systematic_sd", "systematic_direction", "control_label",
)

#: Child seed sequences of a planted screen after those of ``screen`` (``STREAMS``), in order.
PLANT_STREAMS = ("assign", "thinning", "duplicate_noise", "duplicate_thinning")

_I32 = np.iinfo(np.int32).max


def _counts(controls, layer):
    """The count matrix of ``controls`` as CSR int64, validated."""
    check("controls", controls, Instance((ad.AnnData,), "an AnnData of control cells (raw counts)"))
    check("layer", layer, Instance((str, type(None)), "a layer name or None"))
    if layer is not None and layer not in controls.layers:
        fail("layer", "None or one of the layers of controls ("
             + (", ".join(map(str, controls.layers.keys())) or "none") + ")", layer)
    X = controls.X if layer is None else controls.layers[layer]
    where = ".X" if layer is None else f"layers[{layer!r}]"
    if X is None:
        fail("controls", "an AnnData with counts in .X or in a layer (layer=...)", "an AnnData with .X None")
    n, G = controls.shape
    if n == 0 or G == 0:
        fail("controls", "an AnnData with at least one cell and one gene", f"shape {(n, G)}")
    if sp.issparse(X):
        M = sp.csr_matrix(X)
        M.sum_duplicates()
        data = M.data
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            fail("controls", "a 2-D count matrix", f"an array of {arr.ndim} dimensions")
        M = None
        data = arr.reshape(-1)
    if data.dtype.kind not in "biuf":
        fail("controls", f"numeric counts in {where}", f"dtype {data.dtype}")
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data)
        if bad.any():
            fail("controls", f"finite counts in {where}", f"{int(bad.sum())} NaN or infinite value(s)")
        if np.any(data != np.round(data)):
            k = int(np.sum(data != np.round(data)))
            fail("controls", f"integer (raw) counts in {where}, not normalised or log values",
                 f"{k} non-integer value(s), e.g. {float(data[data != np.round(data)][0])!r}")
    if data.size and data.min() < 0:
        fail("controls", f"non-negative counts in {where}", f"{int(np.sum(data < 0))} negative value(s)")
    if M is None:
        M = sp.csr_matrix(np.asarray(X))
    M = sp.csr_matrix((M.data.astype(np.int64), M.indices.astype(np.int64), M.indptr.astype(np.int64)),
                      shape=M.shape)
    M.eliminate_zeros()
    lib = np.asarray(M.sum(axis=1)).ravel()
    if np.any(lib == 0):
        fail("controls", "cells with at least one count each (filter empty cells first)",
             f"{int(np.sum(lib == 0))} empty cell(s)")
    genes = pd.Index(np.asarray(controls.var_names).astype(str))
    if genes.has_duplicates:
        dup = genes[genes.duplicated()][0]
        fail("controls", "an AnnData with unique gene names (var_names)", f"duplicated name {dup!r}")
    return M, genes, lib


def _moments(M: sp.csr_matrix, lib: np.ndarray):
    """Size factors, normalised means and NB dispersions of the user's cells (moments)."""
    s = lib / np.exp(np.mean(np.log(lib)))
    Z = sp.diags(1.0 / s) @ M.astype(float)
    n = M.shape[0]
    m = np.asarray(Z.mean(axis=0)).ravel()
    m2 = np.asarray(Z.multiply(Z).mean(axis=0)).ravel()
    var = (m2 - m * m) * n / max(n - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = (var - m * np.mean(1.0 / s)) / (m * m)
    phi = np.where(np.isfinite(phi), np.clip(phi, 1e-6, 1e3), 1e-6)
    return s, m, phi


def _thin(X: sp.csr_matrix, group, escaped, factor, shared, effects, target_index, M, gen):
    """Binomial thinning of the rows ``X`` (CSR int64) to their group's planted effects."""
    n = X.shape[0]
    rows = np.repeat(np.arange(n), np.diff(X.indptr))
    cols = X.indices
    grp = group[rows]
    lq = -M[cols]
    pert = grp > 0
    lq[pert] += shared[cols[pert]]
    ne = pert & ~escaped[rows]
    lq[ne] += effects[grp[ne] - 1, cols[ne]]
    q = np.exp2(lq)
    tcol = np.where(pert, target_index[np.maximum(grp - 1, 0)], -1)
    at = pert & (cols == tcol)
    q[at] *= factor[rows[at]]
    q = np.clip(q, 0.0, 1.0)
    vals = gen.binomial(X.data, q)
    out = sp.csr_matrix((vals, cols.copy(), X.indptr.copy()), shape=X.shape)
    out.eliminate_zeros()
    if out.data.size == 0 or out.data.max() <= _I32:
        out.data = out.data.astype(np.int32)
    if out.indptr[-1] < _I32:
        out.indptr = out.indptr.astype(np.int32)
        out.indices = out.indices.astype(np.int32)
    return out


def _version() -> str:
    from .. import __version__

    return __version__


def plant(
    controls: ad.AnnData,
    *,
    n_perturbations: int = 20,
    cells_per_perturbation: float = 50.0,
    n_control_cells: int | None = None,
    n_replicates: int = 1,
    layer: str | None = None,
    duplicate: bool = False,
    rng=None,
    **effects,
) -> ad.AnnData:
    """Plant known perturbation effects into a user's control cells (semi-synthetic screen).

    The cells are shuffled and split: ``n_control_cells`` stay controls, the next ones are
    assigned to ``n_perturbations`` pseudo-perturbations (cells per perturbation and guides
    drawn as in :func:`simpert.sim.screen`); with ``duplicate=True`` a disjoint set of the
    remaining cells makes the technical duplicate. Targets, guide efficiencies, escapers,
    sparse specific effects and the shared systematic response are drawn by the same code
    as :func:`simpert.sim.screen` (same parameters, defaults and seed streams), and then
    planted by binomial thinning (Gerard 2020; seqgendiff ``R/genthin.R``, ``thin_base``):
    count ``x_cg`` becomes ``Binomial(x_cg, 2^(l_cg - M_g))`` with ``l_cg`` the cell's log2
    effect (shared response, plus, unless the cell escaped, its specific effects and its
    own target factor) and ``M_g = max(0, largest l_cg possible)``; controls are thinned by
    ``2^-M_g`` too, so every ratio keeps the planted effect.

    Parameters
    ----------
    controls : AnnData
        Control (non-targeting) cells x genes with raw integer counts in ``.X`` or in
        ``layers[layer]``; dense or sparse, integer or float dtype; any obs and var names
        (var names must be unique: they name the genes and the targets).
    n_perturbations : int, default 20
        Pseudo-perturbations; each targets a distinct gene drawn at random (unless
        ``unmeasured_targets`` of them target no measured gene).
    cells_per_perturbation : float, default 50.0
        Mean cells per perturbation (negative binomial with ``cell_count_dispersion``).
    n_control_cells : int or None
        Held-out control cells of the screen. None: every cell left over (half of them
        with ``duplicate=True``).
    n_replicates : int, default 1
        Pseudo-replicates: the cells of every group are assigned to them in turn (as in
        ``screen``), with no offsets added (the differences between replicates are those of
        the user's cells); more than one lets DESeq2-style DE run on the pseudobulk.
    layer : str or None
        Layer of ``controls`` holding the counts; ``.X`` when None.
    duplicate : bool, default False
        Also build the technical duplicate: the same design (cells per perturbation,
        guides) and the same planted effects, on a disjoint set of the user's cells with
        its own escapers, editing and thinning. Its counts are stored in
        ``layers["duplicate"]`` and its per-cell values in ``uns["simpert"]["duplicate"]``;
        :func:`simpert.sim.redraw` returns it as an AnnData (this is what the
        ``technical_duplicate`` predictor and :func:`simpert.calibrate.calibrate` use).
        Needs twice the cells.
    rng : None, int, SeedSequence or Generator
        Randomness; the same seed gives the same bytes.
    **effects
        Effect fields of :class:`ScreenParams` (their defaults apply): ``p_effect``,
        ``effect_size``, ``effect_sd``, ``systematic_strength``, ``systematic_sd``,
        ``systematic_direction``, ``modality``, ``n_guides``, ``efficiency_a``,
        ``efficiency_b``, ``escape_rate``, ``ko_residual``, ``activation_fold``,
        ``cell_count_dispersion``, ``min_cells``, ``unmeasured_targets``,
        ``control_label`` (see :data:`EFFECT_FIELDS`).

    Returns
    -------
    AnnData
        Cells x genes (CSR integer counts, the user's gene order and names) in the layout
        of :func:`simpert.sim.screen`: ``obs`` has ``perturbation``, ``is_control``,
        ``target``, ``guide``, ``replicate``, ``size_factor`` (the source cell's library
        over the geometric mean of all the user's libraries), ``knockdown``, ``escaped``,
        ``source_cell`` (obs name of the user's cell), ``source_library`` and ``library``
        (total counts before and after thinning); ``var`` has ``base_mean`` (mean
        size-factor-normalised control count after the ``2^-M_g`` thinning),
        ``dispersion`` (moment estimate from the user's cells, ``(v - m mean(1/s)) / m^2``
        of the size-factor-normalised counts, clipped to [1e-6, 1e3], 1e-6 for a gene without
        counts; binomial thinning keeps a negative binomial's dispersion) and ``is_regulator``; ``uns["simpert"]`` has
        ``kind = "planted"`` and the truth read by :func:`simpert.sim.truth`.

    Notes
    -----
    The truth ``log2fc`` is the log2 ratio of the expected size-factor-normalised mean of a
    perturbation's cells to that of the controls, the size factor being the source cell's
    (``obs["size_factor"]``); as in ``screen`` it is ``shared + log2((1 - e) 2^specific +
    e)`` with ``e`` the escape rate and the target's specific value the log2 of its mean
    factor over guides. Thinning also lowers the libraries: ``truth["library_log2fc"]``
    holds each perturbation's expected log2 library-size ratio to the controls (what a
    total-count normalisation shifts every gene by) and ``truth["max_log2fc"]`` the
    per-gene ``M_g``. Real control cells carry no count model, so
    :func:`simpert.sim.expected_counts` does not apply, and the oracle of
    :mod:`simpert.predict` uses a negative binomial with the stored ``base_mean`` and
    ``dispersion`` (an approximation of the real noise).

    Examples
    --------
    >>> import simpert as sp
    >>> ctrl = sp.sim.screen(n_genes=100, n_perturbations=0, n_control_cells=600, rng=1)
    >>> planted = sp.sim.plant(ctrl, n_perturbations=5, cells_per_perturbation=40, rng=0)
    >>> sp.sim.truth(planted).log2fc.shape
    (5, 100)
    """
    check("n_perturbations", n_perturbations, Integer(1))
    check("cells_per_perturbation", cells_per_perturbation, Interval(0, None, "neither"))
    check("n_control_cells", n_control_cells, Integer(1, allow_none=True))
    check("n_replicates", n_replicates, Integer(1))
    check("duplicate", duplicate, Instance((bool, np.bool_), "True or False"))
    unknown = sorted(set(effects) - set(EFFECT_FIELDS))
    if unknown:
        fields_ = set(ScreenParams.__dataclass_fields__)
        why = ("describes the noise, which comes from the control cells" if unknown[0] in fields_
               else "is not a parameter of plant")
        raise TypeError(f"parameter {unknown[0]!r} must be one of the effect fields of ScreenParams "
                        f"({', '.join(EFFECT_FIELDS)}); got {unknown[0]!r}, which {why}")
    X, genes, lib = _counts(controls, layer)
    N, G = X.shape
    label = effects.get("control_label", "control")
    if isinstance(label, str) and label in set(genes):
        fail("control_label", "a label that is not a gene name of controls (perturbations are named "
             "after their target genes)", label)
    if n_perturbations - int(effects.get("unmeasured_targets", 0) or 0) > G:
        fail("n_perturbations", f"at most the number of genes of controls ({G}) plus unmeasured_targets "
             "(each perturbation targets a distinct gene)", n_perturbations)
    p = ScreenParams(n_genes=G, n_perturbations=int(n_perturbations), n_control_cells=1,
                     cells_per_perturbation=float(cells_per_perturbation), n_replicates=int(n_replicates),
                     replicate_sd=0.0, **effects)
    ss = as_seed_sequence(rng)
    children = fresh(ss).spawn(len(STREAMS) + len(PLANT_STREAMS))
    streams = dict(zip(STREAMS + PLANT_STREAMS, children))
    tr = _draw_truth(p, streams)
    n_pert_cells = int(tr["n_cells"].sum())
    copies = 2 if duplicate else 1
    if n_control_cells is None:
        left = N // copies - n_pert_cells
        if left < 1:
            fail("controls", f"an AnnData of at least {copies * (n_pert_cells + 1)} cells for this design "
                 f"({n_perturbations} perturbations drawing {n_pert_cells} cells"
                 + (", twice with duplicate=True" if duplicate else "") + ", plus at least one control)",
                 f"{N} cells")
        n_ctrl = int(left)
    else:
        n_ctrl = int(n_control_cells)
        need = copies * (n_ctrl + n_pert_cells)
        if need > N:
            fail("controls", f"an AnnData of at least {need} cells for this design ({n_ctrl} controls + {n_pert_cells} cells "
                 f"of {n_perturbations} perturbations" + (", twice with duplicate=True" if duplicate else "")
                 + "; lower n_control_cells or cells_per_perturbation)", f"{N} cells")
    p = p.replace(n_control_cells=n_ctrl)
    design = _draw_design(p, tr["n_cells"], streams["design"])
    n_screen = design.group.shape[0]
    P = p.n_perturbations
    targets = tr["targets"].astype(np.int64)
    model = CountModel(
        base_mean=np.ones(G), dispersion=np.full(G, 0.1), shared=tr["shared"], effects=tr["effects"],
        target_index=targets, guide_efficiency=tr["eff"].reshape(-1), replicate_log2fc=np.zeros((p.n_replicates, G)),
        escape_rate=p.escape_rate, ko_residual=p.ko_residual, activation_fold=p.activation_fold,
        modality=p.modality,
    )
    # truth: as in screen
    specific = tr["effects"].copy()
    tf = target_factor(model, tr["eff"])  # P x n_guides, expected factor per guide
    has = np.flatnonzero(targets >= 0)
    specific[has, targets[has]] = np.log2(tf.mean(axis=1)[has])
    e = p.escape_rate
    log2fc = tr["shared"][None, :] + np.log2((1.0 - e) * np.exp2(specific) + e)
    check_finite(("effect_size", "effect_sd", "systematic_strength", "systematic_sd",
                  "systematic_direction"), log2fc=log2fc, shared_log2fc=tr["shared"])
    # M_g: the largest log2 effect any cell can carry on gene g (controls: 0)
    M = np.maximum(0.0, tr["shared"] + np.maximum(0.0, tr["effects"].max(axis=0)))
    tmax = np.maximum(1.0, tf.max(axis=1))
    for j in has:
        t = targets[j]
        M[t] = max(M[t], tr["shared"][t] + np.log2(tmax[j]))
    # the user's cells: size factors and moments, then a random assignment
    s_all, m_all, phi = _moments(X, lib)
    order = np.random.default_rng(streams["assign"]).permutation(N)
    src = order[:n_screen]
    noise = cell_noise(model, design, streams["noise"])
    Xc = _thin(X[src], design.group, noise["escaped"], noise["factor"], tr["shared"], tr["effects"],
               targets, M, np.random.default_rng(streams["thinning"]))
    base = m_all * np.exp2(-M)
    obs_names = np.asarray(controls.obs_names).astype(str)
    # the truth and obs in the layout of screen()
    from ._screen import _design_obs, _is_regulator

    perts = np.asarray(
        list(genes[targets[targets >= 0]]) + [f"u{i:05d}" for i in range(int(np.sum(targets < 0)))],
        dtype=object)
    guides = np.array([f"{t}_{j + 1}" for t in perts for j in range(p.n_guides)], dtype=object)
    with np.errstate(divide="ignore"):
        lib_lfc = np.log2((np.exp2(log2fc) * base[None, :]).sum(axis=1) / base.sum())
    truth = {
        "perturbations": perts.astype(str),
        "genes": np.asarray(genes).astype(str),
        "targets": perts.astype(str),
        "target_index": targets,
        "log2fc": log2fc,
        "specific_log2fc": specific,
        "shared_log2fc": tr["shared"],
        "systematic_direction": tr["d"],
        "guides": guides.astype(str),
        "guide_efficiency": tr["eff"].reshape(-1),
        "replicate_log2fc": np.zeros((p.n_replicates, G)),
        "cells_per_perturbation": tr["n_cells"],
        "max_log2fc": M,
        "library_log2fc": lib_lfc,
    }
    # the design and effect fields (the noise fields of ScreenParams were not used)
    keep = ("n_genes", "n_perturbations", "n_control_cells", "cells_per_perturbation", "n_replicates") + EFFECT_FIELDS
    params = {k: v for k, v in p.to_dict().items() if k in keep}
    params.update(n_source_cells=int(N), duplicate=bool(duplicate), layer=layer or "")
    uns = {
        "kind": "planted",
        "control": p.control_label,
        "version": _version(),
        "seed": seed_record(ss),
        "params": params,
        "truth": truth,
    }
    obs = _design_obs(design, uns, {"size_factor": s_all[src], "knockdown": noise["knockdown"],
                                    "escaped": noise["escaped"]})
    obs["source_cell"] = obs_names[src]
    obs["source_library"] = lib[src].astype(np.int64)
    obs["library"] = np.asarray(Xc.sum(axis=1)).ravel().astype(np.int64)
    var = pd.DataFrame({"base_mean": base, "dispersion": phi, "is_regulator": _is_regulator(uns, G)},
                       index=pd.Index(np.asarray(genes).astype(str)))
    out = ad.AnnData(X=Xc, obs=obs, var=var, uns={"simpert": uns})
    if duplicate:
        dsrc = order[n_screen:2 * n_screen]
        dnoise = cell_noise(model, design, streams["duplicate_noise"])
        Xd = _thin(X[dsrc], design.group, dnoise["escaped"], dnoise["factor"], tr["shared"], tr["effects"],
                   targets, M, np.random.default_rng(streams["duplicate_thinning"]))
        out.layers["duplicate"] = Xd
        uns["duplicate"] = {
            "size_factor": s_all[dsrc], "knockdown": dnoise["knockdown"], "escaped": dnoise["escaped"],
            "source_cell": obs_names[dsrc], "source_library": lib[dsrc].astype(np.int64),
            "library": np.asarray(Xd.sum(axis=1)).ravel().astype(np.int64),
        }
    return out


def planted_duplicate(adata: ad.AnnData) -> ad.AnnData:
    """The technical duplicate of a planted screen (built by ``plant(..., duplicate=True)``).

    :func:`simpert.sim.redraw` calls this for planted screens: the duplicate is fixed when
    the screen is planted (it needs the user's cells, which the screen does not carry).

    Parameters
    ----------
    adata : AnnData
        Output of :func:`plant` with ``duplicate=True``.

    Returns
    -------
    AnnData
        Same obs names, var, design and truth; the duplicate's counts in ``.X`` and its
        per-cell columns (size_factor, knockdown, escaped, source_cell, source_library,
        library) in ``obs``.
    """
    check("adata", adata, Instance((ad.AnnData,), "an AnnData"))
    rec = adata.uns.get("simpert", {})
    if not hasattr(rec, "get") or rec.get("kind") != "planted" or "duplicate" not in adata.layers \
            or "duplicate" not in rec:
        fail("adata", "a planted screen built with simpert.sim.plant(..., duplicate=True) (cells, not "
             "pseudobulk)", "an AnnData without layers['duplicate']")
    d = rec["duplicate"]
    obs = adata.obs.copy()
    for k in ("size_factor", "knockdown", "escaped", "source_cell", "source_library", "library"):
        if k in obs and k in d:
            obs[k] = np.asarray(d[k])
    new = {k: v for k, v in rec.items() if k != "duplicate"}
    new["duplicate_of"] = "layers['duplicate'] of the planted screen"
    uns = dict(adata.uns)
    uns["simpert"] = new
    return ad.AnnData(X=adata.layers["duplicate"].copy(), obs=obs, var=adata.var.copy(), uns=uns)
