"""The count-level perturbation screen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import anndata as ad

from .._random import as_seed_sequence, seed_record
from .._validation import Instance, OneOf, check, fail
from ._engine import (CountModel, Design, cell_bytes, check_memory, draw_counts, fresh, hill_response,
                      model_to_uns, target_factor)
from ._params import ScreenParams

__all__ = ["screen", "gene_names", "check_finite", "STREAMS"]

#: Child seed sequences of a screen, in spawn order. Each component draws from its own
#: stream, so switching one component off (it is drawn and then zeroed) leaves the others.
STREAMS = (
    "base_mean", "dispersion", "targets", "guide_efficiency", "effects", "systematic",
    "cell_counts", "replicates", "design", "noise",
    # added later, at the end, so that no earlier stream moves
    "programs", "program_shift", "batches", "batch_design", "multiplets", "combinations",
    "combination_design", "contexts", "context_design",
)


def gene_names(n: int) -> np.ndarray:
    """Gene names ``g00000``, ``g00001``, ... (at least five digits).

    Parameters
    ----------
    n : int
        Number of genes.

    Returns
    -------
    ndarray of object
        The ``n`` names, zero-padded so that they sort in order.
    """
    width = max(5, len(str(max(n - 1, 0))))
    return np.array([f"g{i:0{width}d}" for i in range(n)], dtype=object)


def _version() -> str:
    from .. import __version__

    return __version__


def _draw_truth(p: ScreenParams, streams: dict) -> dict:
    G, P = p.n_genes, p.n_perturbations
    # gene means and dispersions
    g = np.random.default_rng(streams["base_mean"])
    drawn = g.gamma(p.mean_shape, p.mean_scale, G)
    base = np.asarray(p.gene_means, dtype=float) if p.gene_means is not None else drawn
    base = np.maximum(base, p.min_mean)
    g = np.random.default_rng(streams["dispersion"])
    scatter = np.exp(p.dispersion_sd * g.standard_normal(G))
    disp = (p.dispersion_a0 + p.dispersion_a1 / base) * scatter
    # targets
    g = np.random.default_rng(streams["targets"])
    U = p.unmeasured_targets
    targets = np.concatenate([np.sort(g.permutation(G)[:P - U]), np.full(U, -1, dtype=np.int64)])
    # guide efficiencies
    # one stream per perturbation: guide j keeps its efficiency whatever n_guides is
    eff = np.zeros((P, p.n_guides))
    for j, child in enumerate(fresh(streams["guide_efficiency"]).spawn(P)):
        eff[j] = np.random.default_rng(child).beta(p.efficiency_a, p.efficiency_b, p.n_guides)
    # sparse specific effects: indicator, magnitude, sign (all drawn whatever p_effect)
    g = np.random.default_rng(streams["effects"])
    u = g.random((P, G))
    z = g.standard_normal((P, G))
    sign = np.where(g.random((P, G)) < 0.5, -1.0, 1.0)
    effects = np.where(u < p.p_effect, sign * p.effect_size * np.exp(p.effect_sd * z), 0.0)
    measured = targets >= 0
    effects[np.flatnonzero(measured), targets[measured]] = 0.0
    # shared systematic response
    g = np.random.default_rng(streams["systematic"])
    d = g.standard_normal(G) * p.systematic_sd
    if p.systematic_direction is not None:
        d = np.asarray(p.systematic_direction, dtype=float)
    shared = p.systematic_strength * d
    # cells per perturbation (NB as Poisson(Gamma)); drawn even when equal
    g = np.random.default_rng(streams["cell_counts"])
    phi = p.cell_count_dispersion
    if phi < 1e-10:  # numerically no dispersion (1 / phi would overflow): equal counts
        phi = 0.0
    gam = g.standard_gamma(1.0 / phi if phi > 0 else 1.0, P)
    lam = p.cells_per_perturbation * (gam * phi if phi > 0 else np.ones(P))
    pois = g.poisson(lam)
    n_cells = pois if phi > 0 else np.full(P, int(round(p.cells_per_perturbation)))
    n_cells = np.maximum(n_cells, p.min_cells).astype(np.int64)
    # replicate offsets
    g = np.random.default_rng(streams["replicates"])
    rep = g.standard_normal((p.n_replicates, G)) * p.replicate_sd
    if p.n_replicates == 1:
        rep[:] = 0.0
    out = dict(base=base, disp=disp, targets=targets, eff=eff, effects=effects, d=d,
               shared=shared, n_cells=n_cells, rep=rep)
    out.update(_draw_programs(p, streams, targets, effects))
    out.update(_draw_combinations(p, streams, effects))
    out.update(_draw_contexts(p, streams, targets, effects, out))
    # batch offsets (drawn even when batch_sd is 0; none with one batch)
    if p.n_batches > 1:
        g = np.random.default_rng(streams["batches"])
        out["batch"] = g.standard_normal((p.n_batches, G)) * p.batch_sd
    return out


def _draw_contexts(p: ScreenParams, streams: dict, targets: np.ndarray, effects: np.ndarray, drawn: dict) -> dict:
    """Context baseline offsets (K x G) and per-context changes of the effects (K x rows x G).

    Child 0 of the stream draws the offsets, child 1 + c context c's own sparse effects
    (indicator, magnitude, sign, all drawn whatever ``p_effect``), so a context keeps its
    draws whatever the number of contexts after it.
    """
    K, G, P = p.n_contexts, p.n_genes, p.n_perturbations
    if K == 1:
        return {}
    children = fresh(streams["contexts"]).spawn(K + 1)
    offsets = np.random.default_rng(children[0]).standard_normal((K, G)) * p.context_sd
    rho = p.context_shared
    measured = np.flatnonzero(targets >= 0)
    deltas = []
    for c in range(K):
        g = np.random.default_rng(children[c + 1])
        u = g.random((P, G))
        z = g.standard_normal((P, G))
        sign = np.where(g.random((P, G)) < 0.5, -1.0, 1.0)
        own = np.where(u < p.p_effect, sign * p.effect_size * np.exp(p.effect_sd * z), 0.0)
        own[measured, targets[measured]] = 0.0
        d = (np.sqrt(rho) - 1.0) * effects + np.sqrt(1.0 - rho) * own
        if "combo_pairs" in drawn:
            pairs, coef = drawn["combo_pairs"], drawn["combo_coef"]
            d = np.vstack([d, coef[:, :1] * d[pairs[:, 0]] + coef[:, 1:] * d[pairs[:, 1]]])
        deltas.append(d)
    return dict(context_offsets=offsets, context_effects=np.stack(deltas))


#: Coefficients (c_A, c_B) of the interaction types; "epistatic" is (1, 0) or (0, 1).
INTERACTION_TYPES = ("additive", "synergistic", "buffering", "epistatic")

#: Up to this many pairs of singles, doubles are drawn from the table of every pair; beyond,
#: pairs are drawn one at a time until enough distinct ones are found.
_PAIR_TABLE_MAX = 4_000_000


def _draw_combinations(p: ScreenParams, streams: dict, effects: np.ndarray) -> dict:
    """Double perturbations: pairs, interaction types, coefficients, full-dose effects, cell counts.

    Every quantity is drawn whatever ``interaction`` (types, dominant single, cell counts),
    so changing the model changes only the coefficients.
    """
    C, P = p.n_combinations, p.n_perturbations
    if C == 0:
        return {}
    g = np.random.default_rng(streams["combinations"])
    n_pairs = P * (P - 1) // 2
    if n_pairs <= _PAIR_TABLE_MAX:
        first, second = np.triu_indices(P, 1)
        pick = np.sort(g.choice(n_pairs, C, replace=False))
        pairs = np.column_stack([first[pick], second[pick]]).astype(np.int64)
    else:  # many singles: draw pairs until C distinct ones (C is far below the number of pairs)
        seen, rows = set(), []
        while len(rows) < C:
            i, j = sorted(int(x) for x in g.choice(P, 2, replace=False))
            if (i, j) not in seen:
                seen.add((i, j))
                rows.append((i, j))
        pairs = np.array(sorted(rows), dtype=np.int64)
    drawn_type = g.integers(0, 4, C)
    b_dominant = g.random(C) < 0.5
    phi = p.cell_count_dispersion if p.cell_count_dispersion >= 1e-10 else 0.0
    gam = g.standard_gamma(1.0 / phi if phi > 0 else 1.0, C)
    pois = g.poisson(p.cells_per_perturbation * (gam * phi if phi > 0 else np.ones(C)))
    n_cells = pois if phi > 0 else np.full(C, int(round(p.cells_per_perturbation)))
    n_cells = np.maximum(n_cells, p.min_cells).astype(np.int64)
    types = drawn_type if p.interaction == "mixed" else np.full(C, INTERACTION_TYPES.index(p.interaction))
    s_ = p.interaction_strength
    coef = np.ones((C, 2))
    coef[types == 1] = 1.0 + s_
    coef[types == 2] = 1.0 - s_
    epi = types == 3
    coef[epi & b_dominant, 0] = 0.0
    coef[epi & ~b_dominant, 1] = 0.0
    combined = coef[:, :1] * effects[pairs[:, 0]] + coef[:, 1:] * effects[pairs[:, 1]]
    return dict(combo_pairs=pairs, combo_coef=coef, combo_types=np.asarray(INTERACTION_TYPES, dtype=object)[types],
                combo_effects=combined, combo_cells=n_cells)


def _draw_programs(p: ScreenParams, streams: dict, targets: np.ndarray, effects: np.ndarray) -> dict:
    """Latent programs: sparse signed loadings (K x G) and per-perturbation activity shifts (P x K).

    The shift's response ``shift @ loadings`` is added to the specific effects in place
    (the target's own column stays 0: the target is modulated per cell).
    """
    K, G, P = p.n_programs, p.n_genes, p.n_perturbations
    if K == 0:
        return {}
    g = np.random.default_rng(streams["programs"])
    u = g.random((K, G))
    z = g.standard_normal((K, G))
    loadings = np.where(u < p.program_density, z, 0.0)
    g = np.random.default_rng(streams["program_shift"])
    shift = g.standard_normal((P, K)) * p.program_shift_sd
    response = shift @ loadings
    measured = targets >= 0
    response[np.flatnonzero(measured), targets[measured]] = 0.0
    effects += response
    return dict(loadings=loadings, shift=shift, program_log2fc=response)


def _draw_design(p: ScreenParams, n_cells: np.ndarray, ss: np.random.SeedSequence,
                 batch_ss: np.random.SeedSequence | None = None,
                 mixed_ss: np.random.SeedSequence | None = None, combo_ss: np.random.SeedSequence | None = None,
                 combo_pairs: np.ndarray | None = None) -> Design:
    P = p.n_perturbations
    sizes = np.concatenate([[p.n_control_cells], n_cells]).astype(np.int64)
    group = np.repeat(np.arange(sizes.shape[0]), sizes)
    guide = np.full(group.shape[0], -1, dtype=np.int64)
    replicate = np.empty(group.shape[0], dtype=np.int64)
    children = fresh(ss).spawn(P + 1)
    start = 0
    for j in range(P + 1):
        m = int(sizes[j])
        replicate[start:start + m] = np.arange(m) % p.n_replicates
        if j > 0:
            gj = np.random.default_rng(children[j])
            guide[start:start + m] = (j - 1) * p.n_guides + gj.integers(0, p.n_guides, m)
        start += m
    second_guide = None
    if combo_pairs is not None and combo_pairs.shape[0]:  # doubles: one guide of each single
        second_guide = np.full(group.shape[0], -1, dtype=np.int64)
        for c, child in enumerate(fresh(combo_ss).spawn(combo_pairs.shape[0])):
            m = int(sizes[P + 1 + c])
            gc = np.random.default_rng(child)
            ja, jb = gc.integers(0, p.n_guides, m), gc.integers(0, p.n_guides, m)
            replicate[start:start + m] = np.arange(m) % p.n_replicates
            guide[start:start + m] = combo_pairs[c, 0] * p.n_guides + ja
            second_guide[start:start + m] = combo_pairs[c, 1] * p.n_guides + jb
            start += m
    batch = None
    if p.n_batches > 1 and batch_ss is not None:  # one stream per group: uniform batch of each cell
        batch = np.empty(group.shape[0], dtype=np.int64)
        start = 0
        for j, child in enumerate(fresh(batch_ss).spawn(sizes.shape[0])):
            m = int(sizes[j])
            batch[start:start + m] = np.random.default_rng(child).integers(0, p.n_batches, m)
            start += m
    design = Design(group=group, guide=guide, replicate=replicate, batch=batch)
    if (p.multiplet_rate > 0 or p.no_guide_rate > 0) and mixed_ss is not None:
        _draw_mixed(p, sizes, design, mixed_ss)
    if second_guide is not None:
        n = group.shape[0]
        if design.second_group is None:
            design.second_group = np.zeros(n, dtype=np.int64)
            design.no_guide = np.zeros(n, dtype=bool)
            design.second_guide = second_guide
        else:
            combo = second_guide >= 0
            design.second_guide[combo] = second_guide[combo]
    return design


def _draw_mixed(p: ScreenParams, sizes: np.ndarray, design: Design, ss: np.random.SeedSequence) -> None:
    """Cells without a guide and multiplets: one stream per perturbation, four draws per cell
    (no-guide uniform, multiplet uniform, second perturbation, second guide), all drawn
    whatever the rates."""
    P = p.n_perturbations
    n = design.group.shape[0]
    second = np.zeros(n, dtype=np.int64)
    second_guide = np.full(n, -1, dtype=np.int64)
    none = np.zeros(n, dtype=bool)
    start = int(sizes[0])
    for j, child in enumerate(fresh(ss).spawn(P), start=1):
        m = int(sizes[j])
        g = np.random.default_rng(child)
        u_none, u_mult = g.random(m), g.random(m)
        other = g.integers(0, max(P - 1, 1), m)
        sguide = g.integers(0, p.n_guides, m)
        sl = slice(start, start + m)
        none[sl] = u_none < p.no_guide_rate
        mult = (u_mult < p.multiplet_rate) & ~none[sl]
        q = other + (other >= j - 1)  # another perturbation, uniformly (0-based)
        second[sl] = np.where(mult, q + 1, 0)
        second_guide[sl] = np.where(mult, q * p.n_guides + sguide, -1)
        start += m
    design.no_guide = none
    design.second_group = second
    design.second_guide = second_guide


def screen(params: ScreenParams | None = None, *, rng=None, output: str = "cells", out=None,
           chunk_cells: int = 20_000, client=None, n_workers: int | None = None, force: bool = False,
           write_from: str = "workers", **overrides):
    """Simulate a count-level CRISPR perturbation screen with known truth.

    Parameters
    ----------
    params : ScreenParams or None
        Parameters (defaults when None); ``overrides`` replace single fields.
    rng : None, int, SeedSequence or Generator
        Randomness; the same seed gives identical counts.
    output : {"cells", "pseudobulk"}, default "cells"
        Cells (CSR int32 counts) or samples summed per perturbation x replicate (dense
        int64, drawn cell by cell without holding the cell matrix).
    out : str or path-like, optional
        Write the cells to this AnnData Zarr store (``.zarr``) instead of returning them:
        drawn in chunks of ``chunk_cells`` on Dask and written chunk by chunk, so the screen
        need not fit in memory. The counts are the bytes of the in-memory screen for the
        same seed, whatever ``chunk_cells`` and the number of workers.
    chunk_cells : int, default 20000
        Cells per chunk with ``out``.
    client : distributed.Client, str or None
        With ``out``: a Dask client or scheduler address; None starts a LocalCluster of
        ``n_workers`` single-threaded processes.
    n_workers : int, optional
        Workers of that LocalCluster (default: the CPUs available).
    force : bool, default False
        With ``out``: replace an existing directory that simpert did not write.
    write_from : {"workers", "client"}, default "workers"
        With ``out``: each worker writes the blocks of its own chunks (the store must be on a
        filesystem every worker sees), or ``"client"``: this process writes every chunk (a
        cluster without a shared filesystem). The same counts either way.
    **overrides
        Fields of :class:`ScreenParams`, e.g. ``n_genes=500``.

    Returns
    -------
    AnnData or Path
        Schema of docs/architecture.md: ``obs`` (perturbation, is_control, target, guide,
        replicate, size_factor, knockdown, escaped[, n_cells]; with the optional features
        also batch, context, program_0, ..., n_guides, second_perturbation, second_guide,
        second_knockdown), ``var`` (base_mean, dispersion, is_regulator) and
        ``uns["simpert"]`` with the truth. With ``out``: the
        path of the Zarr store (read it with ``anndata.read_zarr`` or stream it with
        :func:`simpert.sim.pseudobulk_zarr`).

    Notes
    -----
    Random components each use their own child seed sequence (see ``STREAMS``); per-cell
    noise uses one stream per perturbation. Switching a nuisance off (``systematic_strength=0``,
    ``escape_rate=0``, ``cell_count_dispersion=0``) draws it and zeroes it, so the other draws
    are unchanged. Truth ``log2fc`` is ``shared + log2((1 - e) 2^specific + e)`` with ``e`` the
    escape rate and the target's specific value ``log2`` of its expected factor over guides.

    The optional features (dose response, programs, batches, multiplets, doubles, contexts;
    see :class:`ScreenParams`) draw from streams added at the end of ``STREAMS`` and from
    further children of the per-group noise streams, so with all of them off the counts are
    the same bytes as without them. With them, ``log2fc`` stays the log2 ratio of the
    expected mean of the cells labelled p to the controls' mean: averaged over the
    doses ``r(k)`` of the guides, over cells without a guide and multiplets
    (``single_log2fc``: single-guide cells only), and over equally weighted contexts
    (``context_log2fc``: per context). Batch offsets and program activity cancel in it.
    ``specific_log2fc`` holds the full-dose effects (program response included).

    Examples
    --------
    >>> import simpert as sp
    >>> adata = sp.sim.screen(n_genes=200, n_perturbations=5, rng=0)
    """
    if params is None:
        params = ScreenParams(**overrides)
    else:
        check("params", params, Instance((ScreenParams,), "a ScreenParams or None"))
        if overrides:
            params = params.replace(**overrides)
    check("output", output, OneOf(("cells", "pseudobulk")))
    if out is not None and output != "cells":
        fail("out", "None with output='pseudobulk' (a Zarr store holds cells)", str(out))
    p = params
    ss = as_seed_sequence(rng)
    streams = dict(zip(STREAMS, fresh(ss).spawn(len(STREAMS))))
    tr = _draw_truth(p, streams)
    P, G = p.n_perturbations, p.n_genes
    combos = "combo_pairs" in tr
    pairs = tr.get("combo_pairs")
    all_effects = np.vstack([tr["effects"], tr["combo_effects"]]) if combos else tr["effects"]
    all_targets = np.concatenate([tr["targets"], tr["targets"][pairs[:, 0]]]) if combos else tr["targets"]
    all_cells = np.concatenate([tr["n_cells"], tr["combo_cells"]]) if combos else tr["n_cells"]
    model = CountModel(
        base_mean=tr["base"], dispersion=tr["disp"], shared=tr["shared"], effects=all_effects,
        target_index=all_targets.astype(np.int64), guide_efficiency=tr["eff"].reshape(-1),
        replicate_log2fc=tr["rep"], library_loc=p.library_loc, library_sd=p.library_sd,
        escape_rate=p.escape_rate, ko_residual=p.ko_residual, activation_fold=p.activation_fold,
        modality=p.modality, dose_response=p.dose_response, hill_coefficient=p.hill_coefficient,
        hill_half=p.hill_half, program_loadings=tr.get("loadings"), program_sd=p.program_sd,
        batch_log2fc=tr.get("batch"), combo_pairs=pairs, combo_coef=tr.get("combo_coef"),
        context_log2fc=tr.get("context_offsets"), context_effects=tr.get("context_effects"),
    )
    if out is None:
        _check_size(model, p.n_control_cells + int(all_cells.sum()), output)
    design = _draw_design(p, all_cells, streams["design"], streams["batch_design"], streams["multiplets"],
                          streams["combination_design"], pairs)
    if p.n_contexts > 1:  # one stream per group: uniform context of each cell
        sizes = np.concatenate([[p.n_control_cells], all_cells]).astype(np.int64)
        design.context = np.concatenate([
            np.random.default_rng(child).integers(0, p.n_contexts, int(m))
            for child, m in zip(fresh(streams["context_design"]).spawn(sizes.shape[0]), sizes)]).astype(np.int64)
    genes = gene_names(G)
    t_idx = tr["targets"]
    width = max(5, len(str(max(p.unmeasured_targets - 1, 0))))
    unmeasured = np.array([f"u{i:0{width}d}" for i in range(int(np.sum(t_idx < 0)))], dtype=object)
    perts = np.concatenate([genes[t_idx[t_idx >= 0]], unmeasured]).astype(object)
    guides = np.array([f"{t}_{j + 1}" for t in perts for j in range(p.n_guides)], dtype=object)
    specific, log2fc, single_log2fc, response = _truth_arrays(p, model, tr)
    if combos:
        labels = np.array([f"{perts[i]}+{perts[j]}" for i, j in pairs], dtype=object)
        perts = np.concatenate([perts, labels])
    ctx = None
    if "context_offsets" in tr:  # per context, and pooled over equally weighted contexts
        ctx = [_truth_arrays(p, model, dict(tr, effects=tr["effects"] + d[:P],
                                            combo_effects=tr["combo_effects"] + d[P:] if combos else None))
               for d in tr["context_effects"]]
        w = np.exp2(tr["context_offsets"])[:, None, :]  # K x 1 x G
        ratio = np.stack([np.exp2(c[1]) for c in ctx])
        log2fc = np.log2((w * ratio).sum(0) / w.sum(0))
    check_finite(("effect_size", "effect_sd", "systematic_strength", "systematic_sd",
                  "systematic_direction"), log2fc=log2fc, shared_log2fc=tr["shared"])
    truth = {
        "perturbations": np.asarray(perts, dtype=object).astype(str),
        "genes": genes.astype(str),
        "targets": np.asarray(perts, dtype=object).astype(str),
        "target_index": all_targets.astype(np.int64),
        "log2fc": log2fc,
        "specific_log2fc": specific,
        "shared_log2fc": tr["shared"],
        "systematic_direction": tr["d"],
        "guides": guides.astype(str),
        "guide_efficiency": tr["eff"].reshape(-1),
        "replicate_log2fc": tr["rep"],
        "cells_per_perturbation": all_cells,
    }
    if combos:
        truth.update(combination_pairs=pairs, combination_coef=tr["combo_coef"],
                     combination_type=np.asarray(tr["combo_types"], dtype=str),
                     combination_effects=tr["combo_effects"],
                     combination_interaction=tr["combo_effects"] - tr["effects"][pairs[:, 0]]
                     - tr["effects"][pairs[:, 1]])
    if p.dose_response != "none":
        truth["dose_response"] = response
    if single_log2fc is not None:
        truth["single_log2fc"] = single_log2fc
    if ctx is not None:
        truth.update(contexts=np.array(context_names(p.n_contexts), dtype=str), context_offsets=tr["context_offsets"],
                     context_effects=tr["context_effects"], context_log2fc=np.stack([c[1] for c in ctx]),
                     context_specific_log2fc=np.stack([c[0] for c in ctx]))
        if single_log2fc is not None:
            truth["context_single_log2fc"] = np.stack([c[2] for c in ctx])
    if "loadings" in tr:
        truth.update(program_loadings=tr["loadings"], program_shift=tr["shift"],
                     program_log2fc=tr["program_log2fc"])
    if "batch" in tr:
        truth.update(batch_log2fc=tr["batch"], batches=np.array(batch_names(p.n_batches), dtype=str))
    uns = {
        "kind": "screen",
        "control": p.control_label,
        "version": _version(),
        "seed": seed_record(ss),
        "params": p.to_dict(),
        "truth": truth,
        "count_model": model_to_uns(model),
    }
    if out is not None:
        from ._chunked import write_zarr

        return write_zarr(model, design, streams["noise"], lambda noise: _design_obs(design, uns, noise),
                          _var(model, uns, genes), {"simpert": uns}, out, chunk_cells=chunk_cells,
                          client=client, n_workers=n_workers, force=force,
                          write_from=write_from)
    return _assemble(model, design, streams["noise"], uns, genes, output=output)


def batch_names(n: int) -> list:
    """Batch labels ``b0``, ``b1``, ... (obs column ``batch``).

    Parameters
    ----------
    n : int

    Returns
    -------
    list of str
    """
    return [f"b{i}" for i in range(n)]


def context_names(n: int) -> list:
    """Context labels ``c0``, ``c1``, ... (obs column ``context``).

    Parameters
    ----------
    n : int

    Returns
    -------
    list of str
    """
    return [f"c{i}" for i in range(n)]


def _truth_arrays(p: ScreenParams, model: CountModel, tr: dict):
    """Specific effects (full dose, targets at their expected factor), log2FC of the labelled
    cells, log2FC of single-guide cells (None without multiplets) and the mean dose response,
    for the single effects ``tr['effects']`` and the doubles' ``tr['combo_effects']``."""
    t_idx = tr["targets"]
    specific = tr["effects"].copy()
    exp_factor = target_factor(model, tr["eff"]).mean(axis=1)
    has = np.flatnonzero(t_idx >= 0)
    specific[has, t_idx[has]] = np.log2(exp_factor[has])
    e = p.escape_rate
    response = None
    if p.dose_response == "none":
        mean_cell = None
        log2fc = tr["shared"][None, :] + np.log2((1.0 - e) * np.exp2(specific) + e)
    else:
        mean_cell, response = _dose_mean(model, tr["eff"], tr["effects"])
        mean_cell[has, t_idx[has]] = exp_factor[has]
        log2fc = tr["shared"][None, :] + np.log2((1.0 - e) * mean_cell + e)
    single_log2fc = None
    if p.multiplet_rate > 0 or p.no_guide_rate > 0:
        single_log2fc = log2fc
        A = np.exp2(specific) if mean_cell is None else mean_cell
        log2fc = _labelled_log2fc(A, tr["shared"], e, p.multiplet_rate, p.no_guide_rate)
    if "combo_pairs" in tr:
        c_spec, c_lfc = _combination_truth(model, tr, exp_factor, e)
        specific = np.vstack([specific, c_spec])
        log2fc = np.vstack([log2fc, c_lfc])
        if single_log2fc is not None:
            single_log2fc = np.vstack([single_log2fc, c_lfc])
        if response is not None:
            response = np.concatenate([response, np.full(c_spec.shape[0], np.nan)])
    return specific, log2fc, single_log2fc, response


def _combination_truth(model: CountModel, tr: dict, exp_factor: np.ndarray, e: float):
    """Specific effects (full dose, targets at their expected factors) and log2FC of the doubles.

    A non-escaped double's mean ratio is the product of its singles' parts (independent
    guides): ``mean 2^(c_A r(k_A) a) * mean 2^(c_B r(k_B) b)`` (``r = 1`` without a dose
    response), times each target's expected knockdown factor at its column.
    """
    pairs, coef = tr["combo_pairs"], tr["combo_coef"]
    pa, pb = pairs[:, 0], pairs[:, 1]
    targets = tr["targets"]
    spec = tr["combo_effects"].copy()
    rows = np.arange(pairs.shape[0])
    if model.dose_response == "none":
        ratio = None
    else:
        ma, _ = _dose_mean(model, tr["eff"][pa], coef[:, :1] * tr["effects"][pa])
        mb, _ = _dose_mean(model, tr["eff"][pb], coef[:, 1:] * tr["effects"][pb])
        ratio = ma * mb
    for col, who in ((targets[pa], pa), (targets[pb], pb)):
        ok = col >= 0
        spec[rows[ok], col[ok]] += np.log2(exp_factor[who[ok]])
        if ratio is not None:
            ratio[rows[ok], col[ok]] *= exp_factor[who[ok]]
    if ratio is None:
        ratio = np.exp2(spec)
    return spec, tr["shared"][None, :] + np.log2((1.0 - e) * ratio + e)


def _labelled_log2fc(A: np.ndarray, shared: np.ndarray, e: float, m: float, nu: float) -> np.ndarray:
    """Log2FC of the mean of the cells labelled p when some carry no guide or a second one.

    ``A`` (P x G) is the mean expression ratio of a non-escaped single-guide cell (target
    included). A labelled cell has no guide with probability ``nu`` (ratio 1); otherwise it
    escapes with probability ``e`` (ratio ``2^shared``), else it is a multiplet with
    probability ``m``, whose ratio is ``2^shared A_p A_q`` averaged over the other
    perturbations q (the two guides are drawn independently, so their means multiply):

        2^log2fc_p = nu + (1 - nu) 2^shared [(1 - e) A_p ((1 - m) + m mean_{q != p} A_q) + e]
    """
    P = A.shape[0]
    other = (A.sum(axis=0)[None, :] - A) / max(P - 1, 1)
    inner = (1.0 - e) * A * ((1.0 - m) + m * other) + e
    return np.log2(nu + (1.0 - nu) * np.exp2(shared)[None, :] * inner)


def _dose_mean(model: CountModel, eff: np.ndarray, effects: np.ndarray):
    """Mean over a perturbation's non-escaped cells of ``2^(r(k_c) effect)`` (P x G), and the
    mean response ``E[r(k_c)]`` (P,), over its guides (equally likely) and, for KO, editing.

    ``k_c`` is the cell's knockdown as the engine records it: the guide's efficiency (CRISPRi,
    CRISPRa) or ``1 - ko_residual`` when edited (probability = efficiency) and 0 otherwise (KO).
    """
    P, G = effects.shape
    J = eff.shape[1] if eff.ndim == 2 else 0
    out = np.zeros((P, G))
    response = np.zeros(P)
    if J == 0:
        return np.exp2(effects), response
    h, K = model.hill_coefficient, model.hill_half
    if model.modality == "ko":
        r1 = float(hill_response(1.0 - model.ko_residual, h, K))
        kbar = eff.mean(axis=1)
        out = kbar[:, None] * np.exp2(r1 * effects) + (1.0 - kbar)[:, None]
        return out, kbar * r1
    for j in range(J):
        k = eff[:, j]
        knock = k if model.modality == "crispra" else 1.0 - target_factor(model, k)
        r = hill_response(knock, h, K)
        out += np.exp2(r[:, None] * effects)
        response += r
    return out / J, response / J


def _check_size(model: CountModel, n_cells: int, output: str) -> None:
    """Refuse, before drawing, a screen whose cells would not fit in memory."""
    per_cell = 200.0 + (2.0 * cell_bytes(model) if output == "cells" else 0.0)
    check_memory(n_cells * per_cell, f"a screen of {n_cells:,} cells x {model.base_mean.shape[0]:,} genes",
                 "simulate fewer cells or genes, or ask for pseudobulk output "
                 "(output='pseudobulk', or --pseudobulk), which never holds the cell matrix")


def check_finite(params, **arrays) -> None:
    """Raise ValueError when a simulated array holds NaN or infinite values.

    Parameters
    ----------
    params : tuple of str
        The parameters that set those arrays (named in the message).
    **arrays
        Name to array.
    """
    for name, arr in arrays.items():
        arr = np.asarray(arr, dtype=float)
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(
                f"parameters {', '.join(repr(x) for x in params)} must give finite values; got "
                f"{int(bad.sum())} non-finite value(s) in the simulated {name} (use smaller values)"
            )


def _design_obs(design: Design, uns: dict, noise: dict) -> pd.DataFrame:
    tr = uns["truth"]
    control = uns["control"]
    perts = list(np.asarray(tr["perturbations"], dtype=object).astype(str))
    cats = [control] + perts
    guides = np.asarray(tr.get("guides", np.zeros(0, dtype=str)), dtype=object).astype(str)
    n = design.group.shape[0]
    pert = pd.Categorical.from_codes(design.group, categories=cats)
    targets_arr = np.asarray([""] + list(np.asarray(tr["targets"], dtype=object).astype(str)), dtype=object)
    gcats = [control] + list(guides) if guides.size else [control] + perts
    gcode = np.where(design.guide >= 0, design.guide + 1, 0) if guides.size else design.group
    obs = pd.DataFrame(
        {
            "perturbation": pert,
            "is_control": design.group == 0,
            "target": targets_arr[design.group],
            "guide": pd.Categorical.from_codes(gcode, categories=gcats),
            "replicate": design.replicate.astype(np.int64),
            "size_factor": noise["size_factor"],
            "knockdown": noise["knockdown"],
            "escaped": noise["escaped"],
        },
        index=pd.Index([f"cell{i:06d}" for i in range(n)]),
    )
    if design.context is not None and "context_offsets" in tr:
        names = [str(b) for b in np.asarray(tr["contexts"], dtype=object)]
        obs["context"] = pd.Categorical.from_codes(np.asarray(design.context, dtype=np.int64), categories=names)
    if design.batch is not None and "batch_log2fc" in tr:
        names = [str(b) for b in np.asarray(tr["batches"], dtype=object)]
        obs["batch"] = pd.Categorical.from_codes(np.asarray(design.batch, dtype=np.int64), categories=names)
    act = noise.get("activity")
    if act is not None:
        for j in range(act.shape[1]):
            obs[f"program_{j}"] = act[:, j]
    if design.mixed:
        sg = np.asarray(design.second_group, dtype=np.int64)
        n_guides = np.where((sg > 0) | (np.asarray(design.second_guide, dtype=np.int64) >= 0), 2, 1)
        n_guides[np.asarray(design.no_guide, dtype=bool)] = 0
        obs["n_guides"] = n_guides.astype(np.int64)
        obs["second_perturbation"] = np.asarray([""] + perts, dtype=object)[sg]
        sgi = np.asarray(design.second_guide, dtype=np.int64)
        gnames = np.asarray([""] + list(guides), dtype=object)
        obs["second_guide"] = gnames[np.where(sgi >= 0, sgi + 1, 0)]
        obs["second_knockdown"] = noise.get("knockdown2", np.zeros(n))
    return obs


def _assemble(model, design, noise_ss, uns, genes, *, output: str) -> ad.AnnData:
    """Draw counts for ``design`` and wrap them with the schema's obs/var/uns."""
    from ._pseudobulk import _pseudobulk_from_cells, design_groups, store_design

    var = _var(model, uns, genes)
    if output == "cells":
        X, noise = draw_counts(model, design, noise_ss)
        obs = _design_obs(design, uns, noise)
        return ad.AnnData(X=X, obs=obs, var=var, uns={"simpert": uns})
    by = ("perturbation", "replicate")
    sample, sample_obs = design_groups(design, uns, by)
    X, noise = draw_counts(model, design, noise_ss, sample=sample, n_samples=len(sample_obs))
    cell_obs = _design_obs(design, uns, noise)
    out = _pseudobulk_from_cells(X, sample_obs, var, uns)
    store_design(out, cell_obs, sample, by)
    return out


def _var(model, uns, genes) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "base_mean": model.base_mean,
            "dispersion": model.dispersion,
            "is_regulator": _is_regulator(uns, len(genes)),
        },
        index=pd.Index(np.asarray(genes).astype(str)),
    )


def _is_regulator(uns: dict, G: int) -> np.ndarray:
    tr = uns["truth"]
    out = np.zeros(G, dtype=bool)
    if "network" in tr:
        net = np.asarray(tr["network"])
        out = np.any(net != 0, axis=1)
    else:
        ti = np.asarray(tr["target_index"], dtype=np.int64)
        out[ti[ti >= 0]] = True
    return out
