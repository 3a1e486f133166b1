"""The count layer shared by the screen and network simulators.

A :class:`CountModel` holds everything that defines the expected counts (gene means,
dispersions, effects, guides, replicate offsets, the library-size law); a :class:`Design`
holds the cells (group, guide, replicate). :func:`draw_counts` draws the per-cell noise
(size factors, escapers, KO editing) and negative binomial counts as Poisson(Gamma), group by
group and in chunks of cells, from one child seed sequence per group and per component, so:

- counts are identical whatever the chunk size;
- the cells of one group do not depend on any other group's size or parameters;
- within a group, the first ``n`` cells do not depend on how many cells follow;
- a cell's counts depend only on its own expected means and its own count stream (one child
  per cell: its gamma variates, then its Poisson draws), so two simulations that differ in a
  nuisance give identical counts to every cell whose expected means the nuisance leaves
  unchanged, and any range of cells can be drawn on its own (chunked, on any worker).

Counts are int32 when every count fits and int64 otherwise (never wrapped); expected means
above 2^53 are refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import os

import numpy as np
import scipy.sparse as sp

__all__ = ["fresh", "CountModel", "Design", "draw_counts", "draw_rows", "cell_noise", "csr_rows",
           "expected_matrix", "target_factor", "hill_response", "dose_weight", "is_extended", "child_stream",
           "public_noise",
           "model_from_uns", "model_to_uns", "max_expected_mean", "check_memory", "cell_bytes"]

LN2 = np.log(2.0)
#: Largest expected count accepted: beyond it float64 means are no longer exact integers.
MAX_MEAN = 2.0 ** 53
_I32 = np.iinfo(np.int32).max


@dataclass
class CountModel:
    """Parameters of the count layer (all arrays numpy, genes last).

    Attributes
    ----------
    base_mean : ndarray (G,)
    dispersion : ndarray (G,)
    shared : ndarray (G,)
        Log2 shared response of every perturbed cell.
    effects : ndarray (P, G)
        Log2 specific effects of non-escaped cells (target knockdown excluded).
    target_index : ndarray (P,) of int
        Column of each perturbation's target, -1 when the target is not modulated per cell.
    guide_efficiency : ndarray (n_guides_total,)
    replicate_log2fc : ndarray (R, G)
    library_loc, library_sd, escape_rate, ko_residual, activation_fold : float
    modality : str
    dose_response : {"none", "hill"}
        Scaling of a non-escaped cell's effects with its knockdown (:func:`dose_weight`).
    hill_coefficient, hill_half : float
        Parameters of the Hill dose response.
    program_loadings : ndarray (K, G) or None
        Loadings of the latent expression programs (None: no programs).
    program_sd : float
        SD of the per-cell program activity.
    batch_log2fc : ndarray (B, G) or None
        Log2 offsets per batch and gene (None: one batch, no offsets).
    combo_pairs : ndarray (C, 2) of int or None
        Double perturbations (the last C rows of ``effects``): the two singles (0-based).
        ``effects`` holds each double's full-dose effect ``c_A a + c_B b``, ``target_index``
        the first single's target; the second single's target is knocked down per cell.
    combo_coef : ndarray (C, 2) or None
        The coefficients ``(c_A, c_B)`` of each double.
    context_log2fc : ndarray (K, G) or None
        Log2 baseline offsets per context and gene (None: one context).
    context_effects : ndarray (K, P, G) or None
        Change of every row of ``effects`` in each context.
    """

    base_mean: np.ndarray
    dispersion: np.ndarray
    shared: np.ndarray
    effects: np.ndarray
    target_index: np.ndarray
    guide_efficiency: np.ndarray
    replicate_log2fc: np.ndarray
    library_loc: float = 0.0
    library_sd: float = 0.2
    escape_rate: float = 0.0
    ko_residual: float = 0.1
    activation_fold: float = 4.0
    modality: str = "crispri"
    dose_response: str = "none"
    hill_coefficient: float = 2.0
    hill_half: float = 0.5
    program_loadings: np.ndarray | None = None
    program_sd: float = 0.0
    batch_log2fc: np.ndarray | None = None
    combo_pairs: np.ndarray | None = None
    combo_coef: np.ndarray | None = None
    context_log2fc: np.ndarray | None = None
    context_effects: np.ndarray | None = None


def _combo(model: CountModel, grp: int) -> int:
    """Index of group ``grp``'s double perturbation, or -1 for a single (or the control)."""
    if model.combo_pairs is None or grp == 0:
        return -1
    c = grp - 1 - (model.effects.shape[0] - model.combo_pairs.shape[0])
    return c if c >= 0 else -1


def _second_group(model: CountModel, design: Design, c: int) -> int:
    """Group of the second guide of cell ``c`` (a multiplet's, or a double's second single), 0 if none."""
    k = _combo(model, int(design.group[c]))
    if k >= 0:
        return int(model.combo_pairs[k, 1]) + 1
    if design.second_group is not None:
        return int(design.second_group[c])
    return 0


@dataclass
class Design:
    """The cells: group 0 is control, group p + 1 is perturbation p.

    Attributes
    ----------
    group : ndarray (n,) of int
    guide : ndarray (n,) of int (-1 for none)
    replicate : ndarray (n,) of int
    batch : ndarray (n,) of int or None
        Batch of each cell (None: no batches, or batch unknown; see :func:`expected_matrix`).
    second_group : ndarray (n,) of int or None
        Group of a multiplet's second guide (0: none); None without multiplets.
    second_guide : ndarray (n,) of int or None
        The second guide (-1: none).
    no_guide : ndarray (n,) of bool or None
        Cells labelled with a perturbation that carry no guide.
    context : ndarray (n,) of int or None
        Context of each cell (None: one context, or context unknown).
    """

    group: np.ndarray
    guide: np.ndarray
    replicate: np.ndarray
    batch: np.ndarray | None = None
    second_group: np.ndarray | None = None
    second_guide: np.ndarray | None = None
    no_guide: np.ndarray | None = None
    context: np.ndarray | None = None

    @property
    def mixed(self) -> bool:
        """Whether some cells may carry two guides or none."""
        return self.second_group is not None or self.no_guide is not None


def hill_response(k, hill_coefficient: float, hill_half: float) -> np.ndarray:
    """Hill dose response on the knockdown fraction: ``k^h / (k^h + K^h) * (1 + K^h)``.

    Normalised so that ``r(1) = 1`` (and ``r(0) = 0``); increasing on [0, 1].

    Parameters
    ----------
    k : array-like
        Knockdown fractions in [0, 1].
    hill_coefficient : float
        ``h`` > 0.
    hill_half : float
        ``K`` > 0, the knockdown at which the unnormalised curve is half saturated.

    Returns
    -------
    ndarray of float
    """
    k = np.clip(np.asarray(k, dtype=float), 0.0, 1.0)
    kh = k ** hill_coefficient
    Kh = hill_half ** hill_coefficient
    return kh / (kh + Kh) * (1.0 + Kh)


def dose_weight(model: CountModel, knockdown) -> np.ndarray:
    """Weight of a non-escaped cell's effects given its knockdown (1 without a dose response).

    Parameters
    ----------
    model : CountModel
    knockdown : array-like
        Per-cell knockdown fractions.

    Returns
    -------
    ndarray of float
    """
    knockdown = np.asarray(knockdown, dtype=float)
    if model.dose_response == "none":
        return np.ones_like(knockdown)
    return hill_response(knockdown, model.hill_coefficient, model.hill_half)


def _n_programs(model: CountModel) -> int:
    return 0 if model.program_loadings is None else int(model.program_loadings.shape[0])


def is_extended(model: CountModel) -> bool:
    """Whether the model uses a per-cell feature beyond the base engine (dose, programs, batches).

    Without one, counts are drawn from per-group tables exactly as before these features.

    Parameters
    ----------
    model : CountModel

    Returns
    -------
    bool
    """
    return (model.dose_response != "none" or _n_programs(model) > 0 or model.batch_log2fc is not None
            or model.combo_pairs is not None or model.context_log2fc is not None)


def child_stream(ss: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    """Child ``i`` of ``ss`` (what ``fresh(ss).spawn(i + 1)[i]`` returns), built directly.

    Parameters
    ----------
    ss : SeedSequence
    i : int

    Returns
    -------
    SeedSequence
    """
    return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (int(i),), pool_size=ss.pool_size)


def public_noise(noise: dict) -> dict:
    """The per-cell noise recorded in ``obs``: size factor, escape, knockdown[, activity].

    Parameters
    ----------
    noise : dict
        From :func:`cell_noise`.

    Returns
    -------
    dict
    """
    keys = ("size_factor", "escaped", "knockdown") + tuple(k for k in ("activity", "knockdown2") if k in noise)
    return {k: noise[k] for k in keys}


def target_factor(model: CountModel, k: np.ndarray, edited: np.ndarray | None = None) -> np.ndarray:
    """Multiplicative factor on the target's mean for efficiency ``k`` (per cell or guide).

    With ``edited`` None the expected factor (KO averaged over editing) is returned.
    """
    if model.modality == "crispri":
        return 1.0 - k
    if model.modality == "crispra":
        return 1.0 + k * (model.activation_fold - 1.0)
    if edited is None:
        return 1.0 - k * (1.0 - model.ko_residual)
    return np.where(edited, model.ko_residual, 1.0)


def fresh(ss: np.random.SeedSequence) -> np.random.SeedSequence:
    """A copy of ``ss`` with no children spawned yet (spawning is then deterministic)."""
    return np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key, pool_size=ss.pool_size)


def max_expected_mean(model: CountModel) -> float:
    """An upper bound on any cell's expected count (size factor at +6 SD of its log-normal law).

    Parameters
    ----------
    model : CountModel

    Returns
    -------
    float
    """
    with np.errstate(over="ignore", divide="ignore"):
        log2 = np.log2(model.base_mean) + np.max(model.replicate_log2fc, axis=0, initial=0.0)
        top = np.max(log2, initial=-np.inf)
        if model.effects.size:
            pert = log2 + model.shared + np.maximum(np.max(model.effects, axis=0), 0.0)
            top = max(top, float(np.max(pert)))
        if model.modality == "crispra":
            top += np.log2(model.activation_fold)
        if model.batch_log2fc is not None:
            top += float(np.max(model.batch_log2fc, initial=0.0))
        if model.context_log2fc is not None:
            top += float(np.max(model.context_log2fc, initial=0.0))
            top += float(np.max(model.context_effects, initial=0.0))
        if _n_programs(model):
            top += 6.0 * model.program_sd * float(np.sqrt(np.max(np.sum(model.program_loadings ** 2, axis=0))))
        lib = (model.library_loc + 6.0 * model.library_sd) / LN2
        return float(np.exp2(top + lib))


def _check_means(model: CountModel) -> None:
    bound = max_expected_mean(model)
    if not np.isfinite(bound) or bound > MAX_MEAN:
        raise ValueError(
            "parameters 'library_loc', 'mean_scale' / 'gene_means' and the effect sizes must keep "
            f"every expected count below 2^53 = {MAX_MEAN:.3g}; got expected counts up to "
            f"{bound:.3g} (lower library_loc or the gene means)"
        )


def cell_bytes(model: CountModel) -> float:
    """Expected bytes of one cell's row in CSR (int32 value + int32 column per non-zero).

    Parameters
    ----------
    model : CountModel

    Returns
    -------
    float
    """
    mu = np.asarray(model.base_mean, dtype=float) * np.exp(model.library_loc + model.library_sd ** 2 / 2)
    alpha = np.asarray(model.dispersion, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p0 = np.where(alpha > 0, np.exp(-np.log1p(alpha * mu) / np.where(alpha > 0, alpha, 1.0)),
                      np.exp(-mu))
    return float(np.sum(1.0 - p0)) * 8.0 + 8.0


def _available_memory() -> int:
    """Bytes of memory available to this process (MemAvailable, or physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def check_memory(n_bytes: float, what: str, advice: str) -> None:
    """Refuse work whose estimated peak memory exceeds 80% of the available memory.

    Parameters
    ----------
    n_bytes : float
        Estimated peak bytes.
    what : str
        What would be built, e.g. ``"a 4,000,000 x 3,000 cell matrix"``.
    advice : str
        What to do instead.

    Raises
    ------
    MemoryError
        With the estimate, the available memory and the advice.
    """
    avail = _available_memory()
    if n_bytes > 0.8 * avail:
        raise MemoryError(
            f"{what} needs about {n_bytes / 2**30:.1f} GiB, more than the {avail / 2**30:.1f} GiB "
            f"of memory available; {advice}"
        )


def _group_streams(noise_ss: np.random.SeedSequence, n_groups: int):
    return fresh(noise_ss).spawn(n_groups)


def _cell_noise(model: CountModel, group: int, guide: np.ndarray, gens):
    """Size factors, escape flags, target factors and knockdown for one group's cells."""
    n = guide.shape[0]
    g_lib, g_esc, g_ko = gens
    s = np.exp(model.library_loc + model.library_sd * g_lib.standard_normal(n))
    u_esc = g_esc.random(n)
    u_ko = g_ko.random(n)
    unmeasured = group > 0 and model.target_index[group - 1] < 0
    if group == 0 or (unmeasured and model.dose_response == "none"):
        escaped = np.zeros(n, dtype=bool) if group == 0 else (u_esc < model.escape_rate)
        return s, escaped, np.ones(n), np.zeros(n)
    escaped = u_esc < model.escape_rate
    k = model.guide_efficiency[guide]
    factor = target_factor(model, k, u_ko < k)
    factor = np.where(escaped, 1.0, factor)
    if model.modality == "crispra":
        knock = np.where(escaped, 0.0, k)
    else:
        knock = 1.0 - factor
    if unmeasured:  # the knockdown acts through the dose response only (no target column)
        factor = np.ones(n)
    return s, escaped, factor, knock


def _row_scales(model: CountModel, group: int):
    """Log2 means per (escaped, replicate) combination for a group: array (2, R, G)."""
    R = model.replicate_log2fc.shape[0]
    base = np.log2(model.base_mean)[None, :] + model.replicate_log2fc  # R x G
    if group == 0:
        out = np.stack([base, base])
    else:
        esc = base + model.shared[None, :]
        full = esc + model.effects[group - 1][None, :]
        out = np.stack([full, esc])  # index 0: not escaped, 1: escaped
    return out.reshape(2 * R, -1)


def cell_noise(model: CountModel, design: Design, noise_ss: np.random.SeedSequence) -> dict:
    """Per-cell size factors, escape flags, target factors and knockdown of every cell.

    Drawn per group from the group's own streams (library sizes, escape, KO editing), so a
    cell's values depend only on its group and its position in the group. Cheap: a few
    numbers per cell, whatever the number of genes.

    Parameters
    ----------
    model : CountModel
    design : Design
    noise_ss : SeedSequence
        Root of the noise streams.

    Returns
    -------
    dict
        ``size_factor``, ``escaped``, ``knockdown``, ``factor`` (target factor) and
        ``position`` (index of each cell within its group), arrays of length n; with
        programs also ``activity`` (n x K), drawn from the fifth child of each group stream.
    """
    n = design.group.shape[0]
    P = model.effects.shape[0]
    order = np.argsort(design.group, kind="stable")
    bounds = np.searchsorted(design.group[order], np.arange(P + 2))
    streams = _group_streams(noise_ss, P + 1)
    out = {"size_factor": np.empty(n), "escaped": np.zeros(n, dtype=bool), "knockdown": np.zeros(n),
           "factor": np.ones(n), "position": np.empty(n, dtype=np.int64)}
    K = _n_programs(model)
    if K:
        out["activity"] = np.zeros((n, K))
    for grp in range(P + 1):
        lo, hi = bounds[grp], bounds[grp + 1]
        if hi <= lo:
            continue
        idx = order[lo:hi]
        gens = [np.random.default_rng(c) for c in streams[grp].spawn(3)]
        s, escaped, factor, knock = _cell_noise(model, grp, design.guide[idx], gens)
        out["size_factor"][idx] = s
        out["escaped"][idx] = escaped
        out["knockdown"][idx] = knock
        out["factor"][idx] = factor
        out["position"][idx] = np.arange(hi - lo)
        if K:  # per-cell program activity: the group stream's fifth child, cell by cell in order
            g_act = np.random.default_rng(child_stream(streams[grp], 4))
            out["activity"][idx] = model.program_sd * g_act.standard_normal((hi - lo, K))
        if design.mixed and grp > 0:
            _mixed_noise(model, design, grp, idx, escaped, child_stream(streams[grp], 5), out)
    return out


def _mixed_noise(model: CountModel, design: Design, grp: int, idx: np.ndarray, escaped: np.ndarray,
                 ss: np.random.SeedSequence, out: dict) -> None:
    """Cells without a guide lose knockdown and escape; a multiplet's (or a double's) second
    guide gets its own KO editing (the group stream's sixth child) and shares the cell's escape."""
    if design.no_guide is not None:
        none = np.asarray(design.no_guide, dtype=bool)[idx]
        out["escaped"][idx[none]] = False
        out["knockdown"][idx[none]] = 0.0
        out["factor"][idx[none]] = 1.0
    if design.second_group is None:
        return
    if "knockdown2" not in out:
        out["knockdown2"] = np.zeros(out["size_factor"].shape[0])
        out["factor2"] = np.ones(out["size_factor"].shape[0])
    u_ko = np.random.default_rng(ss).random(idx.shape[0])
    k_combo = _combo(model, grp)
    if k_combo >= 0:
        sg = np.full(idx.shape[0], int(model.combo_pairs[k_combo, 1]) + 1, dtype=np.int64)
    else:
        sg = np.asarray(design.second_group, dtype=np.int64)[idx]
    live = np.flatnonzero((sg > 0) & ~escaped)
    if design.no_guide is not None:
        live = live[~none[live]]
    if live.size == 0:
        return
    k = model.guide_efficiency[np.asarray(design.second_guide, dtype=np.int64)[idx[live]]]
    factor = target_factor(model, k, u_ko[live] < k)
    knock = k if model.modality == "crispra" else 1.0 - factor
    measured = model.target_index[sg[live] - 1] >= 0
    if model.dose_response == "none":
        knock = np.where(measured, knock, 0.0)
    out["knockdown2"][idx[live]] = knock
    out["factor2"][idx[live]] = np.where(measured, factor, 1.0)


def _cell_log2(model: CountModel, design: Design, noise: dict, c: int, log2_base: np.ndarray) -> np.ndarray:
    """Log2 expected counts of cell ``c`` at size factor 1 before the target factor.

    The sums are taken in the order of the per-group tables (base + replicate, + shared,
    + effects), so with every new term zero the values are those of the tables.
    """
    grp = int(design.group[c])
    lg = log2_base + model.replicate_log2fc[int(design.replicate[c])]
    if model.batch_log2fc is not None and design.batch is not None:
        lg = lg + model.batch_log2fc[int(design.batch[c])]
    ctx = -1
    if model.context_log2fc is not None and design.context is not None:
        ctx = int(design.context[c])
        lg = lg + model.context_log2fc[ctx]

    def row(i):  # effects row i (0-based) in the cell's context
        return model.effects[i] if ctx < 0 else model.effects[i] + model.context_effects[ctx, i]

    if grp > 0 and not (design.no_guide is not None and design.no_guide[c]):
        lg = lg + model.shared
        if not noise["escaped"][c]:
            k_combo = _combo(model, grp)
            if k_combo >= 0 and model.dose_response != "none":  # each single at its own dose
                (ia, ib), (ca, cb) = model.combo_pairs[k_combo], model.combo_coef[k_combo]
                wa = ca * float(dose_weight(model, noise["knockdown"][c]))
                wb = cb * float(dose_weight(model, noise["knockdown2"][c]))
                lg = lg + (wa * row(ia) + wb * row(ib))
            else:
                groups = [(grp, noise["knockdown"][c])]
                if design.second_group is not None and design.second_group[c] > 0:
                    groups.append((int(design.second_group[c]), noise["knockdown2"][c]))
                for g_, kd in groups:
                    if model.dose_response == "none":
                        lg = lg + row(g_ - 1)
                    else:
                        w = float(dose_weight(model, kd))
                        if w > 0.0:
                            lg = lg + w * row(g_ - 1)
    act = noise.get("activity")
    if act is not None:
        for j in range(act.shape[1]):
            lg = lg + act[c, j] * model.program_loadings[j]
    return lg


def _count_roots(noise_ss: np.random.SeedSequence, n_groups: int) -> list:
    """Per-group roots of the per-cell count streams (the fourth child of each group)."""
    return [g.spawn(4)[3] for g in _group_streams(noise_ss, n_groups)]


def draw_rows(model: CountModel, design: Design, noise: dict, roots: list, rows: np.ndarray) -> np.ndarray:
    """Counts of the cells ``rows`` (dense int64, one row per cell, in the order given).

    Each cell draws its gamma variates and then its Poisson counts from its own stream
    (child ``position`` of its group's count root): its counts depend on nothing but its
    own expected means, whichever other cells are drawn, in whatever chunks.

    Parameters
    ----------
    model : CountModel
    design : Design
    noise : dict
        From :func:`cell_noise`.
    roots : list of SeedSequence
        From the group streams (see :func:`draw_counts`).
    rows : ndarray of int
        Cells to draw.

    Returns
    -------
    ndarray of int64, shape (len(rows), G)
    """
    G = model.base_mean.shape[0]
    R = model.replicate_log2fc.shape[0]
    alpha = np.asarray(model.dispersion, dtype=float)
    pos = alpha > 0
    all_pos = bool(np.all(pos))
    shape = 1.0 / alpha[pos]
    out = np.empty((rows.shape[0], G), dtype=np.int64)
    tables = {}
    extended = is_extended(model) or design.mixed
    log2_base = np.log2(model.base_mean) if extended else None
    for i, c in enumerate(rows):
        grp = int(design.group[c])
        root = roots[grp]
        gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
            root.entropy, spawn_key=root.spawn_key + (int(noise["position"][c]),), pool_size=root.pool_size)))
        if extended:  # per-cell means: batch, dose, program activity
            lam = np.exp2(_cell_log2(model, design, noise, c, log2_base))
            if all_pos:
                lam *= alpha
            else:
                lam[pos] *= alpha[pos]
        else:
            table = tables.get(grp)
            if table is None:
                scales = np.exp2(_row_scales(model, grp))
                if all_pos:
                    scales *= alpha[None, :]
                else:
                    scales[:, pos] *= alpha[None, pos]
                table = tables[grp] = scales
            lam = table[int(noise["escaped"][c]) * R + int(design.replicate[c])].copy()
        if all_pos:
            lam *= gen.standard_gamma(shape)
        else:
            lam[pos] *= gen.standard_gamma(shape)
        lam *= noise["size_factor"][c]
        t = -1 if grp == 0 else int(model.target_index[grp - 1])
        if t >= 0:
            lam[t] *= noise["factor"][c]
        g2 = _second_group(model, design, c) if design.mixed else 0
        if g2 > 0:
            t2 = int(model.target_index[g2 - 1])
            if t2 >= 0:
                lam[t2] *= noise["factor2"][c]
        if not lam.max(initial=0.0) < MAX_MEAN:
            raise ValueError(
                "parameters 'library_loc', 'mean_scale' / 'gene_means' and 'dispersion_a0' / "
                "'dispersion_a1' must keep every gamma-Poisson rate below 2^53 (a large dispersion "
                f"makes rare huge rates); got a rate of {float(lam.max()):.3g}"
            )
        out[i] = gen.poisson(lam)
    return out


def csr_rows(counts: np.ndarray):
    """Compress dense count rows to CSR (int32 values, or int64 when a count needs it).

    Parameters
    ----------
    counts : ndarray of int64, shape (r, G)

    Returns
    -------
    scipy.sparse.csr_matrix
    """
    r, G = counts.shape
    flat = counts.reshape(-1)
    nzi = np.flatnonzero(flat)
    vals = flat[nzi]
    if vals.size == 0 or vals.max() <= _I32:
        vals = vals.astype(np.int32)
    indptr = np.zeros(r + 1, dtype=np.int64)
    np.cumsum(np.bincount(nzi // G, minlength=r), out=indptr[1:])
    return sp.csr_matrix((vals, (nzi % G).astype(np.int32), indptr), shape=(r, G))


def draw_counts(
    model: CountModel,
    design: Design,
    noise_ss: np.random.SeedSequence,
    *,
    sample: np.ndarray | None = None,
    n_samples: int | None = None,
    chunk_elems: int = 1 << 21,
):
    """Draw counts for ``design`` under ``model``.

    Parameters
    ----------
    model : CountModel
    design : Design
    noise_ss : SeedSequence
        Root of the noise streams (one child per group, four per group: library sizes,
        escape, KO editing, and the root of one count stream per cell).
    sample : ndarray (n,) of int or None
        When given, counts are summed into ``n_samples`` rows by these codes (pseudobulk)
        instead of returned per cell.
    n_samples : int or None
    chunk_elems : int
        Approximate number of matrix elements drawn at once.

    Returns
    -------
    X : scipy.sparse.csr_matrix (int32, or int64 when a count exceeds 2^31 - 1) or ndarray (int64)
    noise : dict of per-cell arrays ``size_factor``, ``escaped``, ``knockdown``

    Raises
    ------
    ValueError
        When an expected count could exceed 2^53.
    MemoryError
        When the cell matrix would not fit in the available memory (checked before drawing).
    """
    n = design.group.shape[0]
    G = model.base_mean.shape[0]
    P = model.effects.shape[0]
    rows_per_chunk = max(1, chunk_elems // max(G, 1))
    _check_means(model)
    if sample is None:
        check_memory(2.0 * n * cell_bytes(model) + 5 * 8.0 * chunk_elems,
                     f"a {n:,} x {G:,} cell matrix",
                     "simulate fewer cells or genes, ask for pseudobulk output (output='pseudobulk', "
                     "or --pseudobulk), or write the cells to disk in chunks (out='screen.zarr')")
    noise = cell_noise(model, design, noise_ss)
    roots = _count_roots(noise_ss, P + 1)
    if sample is not None:
        out = np.zeros((int(n_samples), G), dtype=np.int64)
    parts = []
    for c0 in range(0, n, rows_per_chunk):
        rows = np.arange(c0, min(n, c0 + rows_per_chunk))
        counts = draw_rows(model, design, noise, roots, rows)
        if sample is not None:
            np.add.at(out, sample[rows], counts)
        else:
            parts.append(csr_rows(counts))
        del counts
    public = public_noise(noise)
    if sample is not None:
        return out, public
    if not parts:
        return sp.csr_matrix((n, G), dtype=np.int32), public
    X = sp.vstack(parts, format="csr")
    parts.clear()
    if X.indptr[-1] < np.iinfo(np.int32).max:
        X.indptr = X.indptr.astype(np.int32)
        X.indices = X.indices.astype(np.int32)
    return X, public


def expected_matrix(model: CountModel, design: Design, size_factor, escaped, knockdown,
                    activity=None, knockdown2=None) -> np.ndarray:
    """Expected counts (n x G) given the realised per-cell noise (dense float64).

    Parameters
    ----------
    model : CountModel
    design : Design
        With batches, ``design.batch`` None means the batch is unknown: the mean over
        batches of ``2^offset`` is used (the expectation under the uniform assignment);
        likewise an unknown context gives the mean over the contexts.
    size_factor, escaped, knockdown : array-like (n,)
    activity : ndarray (n, K) or None
        Per-cell program activity; None with programs gives the expectation over the
        activity law (``2^(ln 2 program_sd^2 sum_j L_jg^2 / 2)``).
    knockdown2 : array-like (n,) or None
        Knockdown of a multiplet's (or a double's) second guide; None for a double gives
        the mean knockdown of its second single's guides (exact for the target's expected
        count without a dose response).

    Returns
    -------
    ndarray of float64, shape (n, G)
    """
    if model.context_log2fc is not None and design.context is None:
        # context unknown: the mean over the (uniformly assigned) contexts
        n, K = design.group.shape[0], model.context_log2fc.shape[0]
        total = 0.0
        for k in range(K):
            known = dataclasses.replace(design, context=np.full(n, k, dtype=np.int64))
            total = total + expected_matrix(model, known, size_factor, escaped, knockdown, activity, knockdown2)
        return total / K
    group = design.group
    escaped = np.asarray(escaped, dtype=bool)
    base = np.log2(model.base_mean)[None, :] + model.replicate_log2fc[design.replicate]
    if model.batch_log2fc is not None:
        if design.batch is not None:
            base = base + model.batch_log2fc[np.asarray(design.batch, dtype=np.int64)]
        else:
            base = base + np.log2(np.mean(np.exp2(model.batch_log2fc), axis=0))[None, :]
    if model.context_log2fc is not None:
        base = base + model.context_log2fc[np.asarray(design.context, dtype=np.int64)]
    has_ctx = model.context_log2fc is not None and design.context is not None

    def rows_of(i, cells):  # effects rows i of the given cells, in their contexts
        out = model.effects[i]
        if has_ctx:
            out = out + model.context_effects[np.asarray(design.context, dtype=np.int64)[cells], i]
        return out

    K = _n_programs(model)
    if K:
        if activity is not None:
            base = base + np.asarray(activity, dtype=float).reshape(-1, K) @ model.program_loadings
        else:
            base = base + LN2 * model.program_sd ** 2 * np.sum(model.program_loadings ** 2, axis=0)[None, :] / 2
    pert = group > 0
    if design.no_guide is not None:
        pert = pert & ~np.asarray(design.no_guide, dtype=bool)
    if np.any(pert):
        pidx = group[pert] - 1
        prow = rows_of(pidx, np.flatnonzero(pert))
        if model.dose_response == "none":
            add = model.shared[None, :] + np.where(escaped[pert][:, None], 0.0, prow)
        else:
            w = np.where(escaped[pert], 0.0, dose_weight(model, np.asarray(knockdown, dtype=float)[pert]))
            add = model.shared[None, :] + w[:, None] * prow
        base[pert] += add
    second = None
    k2 = np.zeros(group.shape[0]) if knockdown2 is None else np.asarray(knockdown2, dtype=float)
    sg = np.zeros(group.shape[0], dtype=np.int64)
    if design.second_group is not None:
        sg = np.asarray(design.second_group, dtype=np.int64).copy()
        second = np.flatnonzero(pert & (sg > 0) & ~escaped)
        if second.size:
            w2 = np.ones(second.size) if model.dose_response == "none" else dose_weight(model, k2[second])
            base[second] += w2[:, None] * rows_of(sg[second] - 1, second)
    if model.combo_pairs is not None:
        n_single = model.effects.shape[0] - model.combo_pairs.shape[0]
        cidx = group - 1 - n_single
        is_combo = group > n_single
        sg[is_combo] = model.combo_pairs[cidx[is_combo], 1] + 1
        rows = np.flatnonzero(is_combo & pert & ~escaped)
        if knockdown2 is None and rows.size and model.guide_efficiency.size:
            # second guides unknown: the expected knockdown of the second single's guides
            eff = model.guide_efficiency.reshape(n_single, -1)
            mean_k = eff.mean(axis=1) * ((1.0 - model.ko_residual) if model.modality == "ko" else 1.0)
            k2 = k2.copy()
            k2[rows] = mean_k[model.combo_pairs[cidx[rows], 1]]
        if rows.size and model.dose_response != "none":  # replace the full-dose row by each single at its dose
            kk = cidx[rows]
            wa = model.combo_coef[kk, 0] * dose_weight(model, np.asarray(knockdown, dtype=float)[rows])
            wb = model.combo_coef[kk, 1] * dose_weight(model, k2[rows])
            pa, pb = model.combo_pairs[kk, 0], model.combo_pairs[kk, 1]
            w_full = dose_weight(model, np.asarray(knockdown, dtype=float)[rows])  # added above
            base[rows] += (wa[:, None] * rows_of(pa, rows) + wb[:, None] * rows_of(pb, rows)
                           - w_full[:, None] * rows_of(group[rows] - 1, rows))
        second = np.flatnonzero(pert & (sg > 0) & ~escaped)
    mu = np.exp2(base) * np.asarray(size_factor)[:, None]
    if np.any(pert):
        rows = np.flatnonzero(pert)
        t = model.target_index[group[rows] - 1]
        ok = t >= 0
        rows, t = rows[ok], t[ok]
        k = np.asarray(knockdown)[rows]
        if model.modality == "crispra":
            f = 1.0 + k * (model.activation_fold - 1.0)
        else:
            f = 1.0 - k
        mu[rows, t] *= f
    if second is not None and second.size:
        t2 = model.target_index[sg[second] - 1]
        ok = t2 >= 0
        rows, t2 = second[ok], t2[ok]
        k = k2[rows]
        f = 1.0 + k * (model.activation_fold - 1.0) if model.modality == "crispra" else 1.0 - k
        mu[rows, t2] *= f
    return mu


_MODEL_ARRAYS = ("shared", "effects", "target_index", "guide_efficiency", "replicate_log2fc")
_MODEL_SCALARS = ("library_loc", "library_sd", "escape_rate", "ko_residual", "activation_fold", "modality")


_DOSE_SCALARS = ("dose_response", "hill_coefficient", "hill_half")


def model_to_uns(model: CountModel) -> dict:
    """The scalar part of a CountModel as an h5ad-safe dict (arrays live in the truth)."""
    out = {k: getattr(model, k) for k in _MODEL_SCALARS}
    if model.dose_response != "none":
        out.update({k: getattr(model, k) for k in _DOSE_SCALARS})
    if _n_programs(model):
        out["program_sd"] = float(model.program_sd)
    return out


def model_from_uns(adata) -> CountModel:
    """Rebuild the CountModel of a simulated AnnData (var + uns)."""
    rec = adata.uns["simpert"]
    tr = rec["truth"]
    cm = rec.get("count_model")
    if cm is None:
        raise ValueError(
            "parameter 'adata' must be a simulated count screen (uns['simpert']['count_model'] "
            f"present); got kind {rec.get('kind')!r} without a count model"
        )
    G = len(tr["genes"])
    P = len(tr["perturbations"])
    effects = np.array(tr["specific_log2fc"], dtype=float).reshape(P, G)
    target_index = np.asarray(tr.get("count_target_index", tr["target_index"]), dtype=np.int64).reshape(P)
    has = np.flatnonzero(target_index >= 0)
    effects[has, target_index[has]] = 0.0  # the target is modulated per cell
    pairs = coef = None
    if "combination_pairs" in tr:  # doubles: their stored full-dose effects (targets included)
        pairs = np.asarray(tr["combination_pairs"], dtype=np.int64).reshape(-1, 2)
        coef = np.asarray(tr["combination_coef"], dtype=float).reshape(-1, 2)
        effects[P - pairs.shape[0]:] = np.asarray(tr["combination_effects"], dtype=float).reshape(-1, G)
    return CountModel(
        base_mean=np.asarray(adata.var["base_mean"], dtype=float),
        dispersion=np.asarray(adata.var["dispersion"], dtype=float),
        shared=np.asarray(tr["shared_log2fc"], dtype=float).reshape(G),
        effects=effects,
        target_index=target_index,
        guide_efficiency=np.asarray(tr.get("guide_efficiency", np.zeros(0)), dtype=float).reshape(-1),
        replicate_log2fc=np.asarray(tr["replicate_log2fc"], dtype=float).reshape(-1, G),
        library_loc=float(cm["library_loc"]),
        library_sd=float(cm["library_sd"]),
        escape_rate=float(cm["escape_rate"]),
        ko_residual=float(cm["ko_residual"]),
        activation_fold=float(cm["activation_fold"]),
        modality=str(cm["modality"]),
        dose_response=str(cm.get("dose_response", "none")),
        hill_coefficient=float(cm.get("hill_coefficient", 2.0)),
        hill_half=float(cm.get("hill_half", 0.5)),
        program_loadings=(np.asarray(tr["program_loadings"], dtype=float).reshape(-1, G)
                          if "program_loadings" in tr else None),
        program_sd=float(cm.get("program_sd", 0.0)),
        batch_log2fc=np.asarray(tr["batch_log2fc"], dtype=float).reshape(-1, G) if "batch_log2fc" in tr else None,
        combo_pairs=pairs,
        combo_coef=coef,
        context_log2fc=np.asarray(tr["context_offsets"], dtype=float).reshape(-1, G) if "context_offsets" in tr else None,
        context_effects=(np.asarray(tr["context_effects"], dtype=float).reshape(-1, P, G)
                         if "context_effects" in tr else None),
    )
