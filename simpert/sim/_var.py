"""Linear (VAR) network simulator with hard interventions (PEREGGRN-style)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._random import as_seed_sequence, seed_record
from .._validation import Instance, check, fail
from ._engine import CountModel, Design, fresh, model_to_uns
from ._network import Network
from ._params import NetworkParams
from ._screen import _assemble, _version, check_finite

__all__ = ["var_network", "spectral_radius", "scale_network", "steady_state", "iterate"]

_DENSE_MAX = 4000


def spectral_radius(weights) -> float:
    """Largest absolute eigenvalue of a (sparse or dense) square matrix.

    Parameters
    ----------
    weights : ndarray or sparse matrix, shape (G, G)

    Returns
    -------
    float
    """
    G = weights.shape[0]
    if G == 0:
        return 0.0
    if sp.issparse(weights) and G > _DENSE_MAX:
        if weights.nnz == 0:
            return 0.0
        val = spla.eigs(weights.astype(float), k=1, which="LM", return_eigenvectors=False, maxiter=10 * G)
        return float(np.abs(val[0]))
    dense = weights.toarray() if sp.issparse(weights) else np.asarray(weights, dtype=float)
    return float(np.max(np.abs(np.linalg.eigvals(dense))))


def scale_network(weights, radius: float | None, *, steady: bool):
    """Scale ``weights`` to spectral radius ``radius`` and check stability.

    An acyclic network has spectral radius 0 and cannot be scaled to a positive radius; it
    is then scaled so that its largest absolute row sum (an upper bound of how much one
    gene's change can move its targets in one step) equals ``radius``.

    Returns
    -------
    (weights, radius_after)
    """
    W = sp.csr_matrix(weights, dtype=np.float64)
    r = spectral_radius(W)
    if radius is not None:
        if r > 1e-10:
            W = W * (radius / r)
            r = radius
        elif W.nnz:
            norm = float(np.max(np.asarray(abs(W).sum(axis=1)).ravel()))
            W = W * (radius / norm)
            r = spectral_radius(W)
    if steady and r >= 1.0:
        shown = radius if radius is not None else r
        fail("spectral_radius", "a number in (0, 1) for the steady state (steps=None): the system "
             "x = b + x W diverges otherwise", shown)
    return W, r


class _Solver:
    """Solves x (I - W) = rhs for row vectors, dense or sparse LU."""

    def __init__(self, W: sp.csr_matrix):
        G = W.shape[0]
        A = sp.identity(G, format="csc") - W.tocsc()
        self.dense = G <= _DENSE_MAX
        if self.dense:
            self.lu = sla.lu_factor(A.toarray())
        else:
            self.lu = spla.splu(A.tocsc())

    def left(self, B: np.ndarray) -> np.ndarray:
        """Y with Y A = B (rows), i.e. A^T Y^T = B^T."""
        if self.dense:
            return sla.lu_solve(self.lu, B.T, trans=1).T
        return self.lu.solve(np.ascontiguousarray(B.T), trans="T").T

    def right(self, u: np.ndarray) -> np.ndarray:
        """z with A z = u."""
        if self.dense:
            return sla.lu_solve(self.lu, u)
        return self.lu.solve(u)


def steady_state(W, b: np.ndarray, target: np.ndarray, clamp_value: float = 1.0) -> np.ndarray:
    """Steady state of ``x = b + x W`` with gene ``target[r]`` of row r clamped (or -1).

    The clamp removes the target's incoming edges (column t of W) and fixes it at
    ``clamp_value``: a rank-one change of ``I - W``, solved with the Sherman-Morrison
    formula from one factorisation of ``I - W``.

    Parameters
    ----------
    W : sparse or dense (G, G)
    b : ndarray (n, G)
        Inputs per row.
    target : ndarray (n,) of int
    clamp_value : float, default 1.0
        Value of the clamped gene.

    Returns
    -------
    ndarray (n, G)
    """
    W = sp.csr_matrix(W, dtype=np.float64)
    solver = _Solver(W)
    Wc = W.tocsc()
    b = np.array(b, dtype=float)
    target = np.asarray(target, dtype=np.int64)
    out = np.empty_like(b)
    for t in np.unique(target):
        rows = np.flatnonzero(target == t)
        B = b[rows]
        if t < 0:
            out[rows] = solver.left(B)
            continue
        B[:, t] = clamp_value
        Y = solver.left(B)
        u = Wc[:, t].toarray().ravel()
        if not np.any(u):
            out[rows] = Y
            continue
        z = solver.right(u)
        e = np.zeros(W.shape[0])
        e[t] = 1.0
        r = solver.left(e[None, :])[0]
        out[rows] = Y - np.outer(Y @ u, r) / (1.0 + z[t])
    return out


def iterate(W, x0: np.ndarray, target: np.ndarray, steps: int, *, clamp_value: float = 1.0,
            persistent: bool = True) -> np.ndarray:
    """Run ``steps`` steps of ``x_t = c + x_{t-1} W`` and clamp after each step.

    ``c = x0`` when ``persistent`` else 0 (the PEREGGRN recursion ``x_t = x_{t-1} W``).

    Parameters
    ----------
    W : sparse or dense (G, G)
    x0 : ndarray (n, G)
    target : ndarray (n,) of int (-1: none)
    steps : int
    clamp_value : float, default 1.0
        Value of the clamped gene after every step.
    persistent : bool, default True
        Keep the input ``x0`` at every step (``c = x0``); False gives ``c = 0``.

    Returns
    -------
    ndarray (n, G)
    """
    W = sp.csr_matrix(W, dtype=np.float64)
    WT = W.T.tocsr()
    x = np.array(x0, dtype=float)
    c = x.copy() if persistent else 0.0
    target = np.asarray(target, dtype=np.int64)
    rows = np.flatnonzero(target >= 0)
    cols = target[rows]
    for _ in range(int(steps)):
        x = c + (WT @ x.T).T
        x[rows, cols] = clamp_value
    return x


def _states(W, b, target, p: NetworkParams) -> np.ndarray:
    if p.steps is None:
        return steady_state(W, b, target, p.clamp_value)
    return iterate(W, b, target, p.steps, clamp_value=p.clamp_value, persistent=p.input == "persistent")


def _check_states(x: np.ndarray, what: str) -> None:
    """Refuse non-finite states (an unstable network iterated for many steps, a huge clamp)."""
    check_finite(("spectral_radius", "steps", "clamp_value", "noise_sd"), **{what: x})


def var_network(network, params: NetworkParams | None = None, *, perturb="all", rng=None, **overrides) -> ad.AnnData:
    """Simulate perturbations of a linear network (the PEREGGRN VAR design, generalised).

    Each sample has inputs ``b ~ U(0, 1)^G``; its state follows ``x_t = b + x_{t-1} W``
    (``input="persistent"``; ``steps=None`` gives the steady state ``x = b (I - W)^-1`` by a
    linear solve) or ``x_t = x_{t-1} W`` from ``x_0 = b`` (``input="initial"``). A
    perturbation of gene t clamps ``x_t = clamp_value`` (hard intervention). ``W`` is the
    network scaled to ``spectral_radius``.

    Parameters
    ----------
    network : Network
        From :func:`erdos_renyi`, :func:`scale_free`, :func:`network_from_edges`,
        :func:`pathway_commons` (entry [i, j] = effect of i on j).
    params : NetworkParams or None
        Parameters; ``overrides`` replace single fields (``n_samples``, ``steps``,
        ``spectral_radius``, ``output``, ...).
    perturb : "all" or sequence of str
        Genes to perturb, one perturbation each.
    rng : None, int, SeedSequence or Generator
    **overrides
        Fields of :class:`NetworkParams`.

    Returns
    -------
    AnnData
        ``output="continuous"``: dense float ``.X`` (samples x genes), truth ``log2fc`` =
        expected state of the perturbation minus the expected control state (on the data
        scale). ``output="counts"``: cells with NB counts whose log2 mean moves by
        ``count_scale`` x that difference (same schema as :func:`screen`, no guides or
        escapers). ``uns["simpert"]["truth"]["network"]`` holds the scaled W.

    Raises
    ------
    ValueError
        When the steady state is asked for and the scaled network has spectral radius >= 1.
    """
    check("network", network, Instance((Network,), "a Network"))
    if params is None:
        params = NetworkParams(**overrides)
    else:
        check("params", params, Instance((NetworkParams,), "a NetworkParams or None"))
        if overrides:
            params = params.replace(**overrides)
    p = params
    genes = np.asarray(network.genes, dtype=object).astype(str)
    G = genes.size
    if G == 0:
        fail("network", "a network with at least one gene", network)
    pos = {g: i for i, g in enumerate(genes)}
    if isinstance(perturb, str) and perturb == "all":
        targets = np.arange(G)
    else:
        if isinstance(perturb, str):
            perturb = [perturb]
        try:
            targets = np.array([pos[str(g)] for g in perturb], dtype=np.int64)
        except KeyError as err:
            fail("perturb", "'all' or a sequence of genes of the network", err.args[0])
        if len(set(targets.tolist())) != targets.size:
            fail("perturb", "a sequence of distinct genes", list(perturb)[:5])
    P = targets.size
    W, radius = scale_network(network.weights, p.spectral_radius, steady=p.steps is None)
    ss = as_seed_sequence(rng)
    s_input, s_noise, s_mean, s_counts = fresh(ss).spawn(4)

    # expected states (inputs at their mean 0.5): the truth
    mean_in = np.full((P + 1, G), 0.5)
    tgt_all = np.concatenate([[-1], targets])
    expected = _states(W, mean_in, tgt_all, p)
    _check_states(expected, "expected states")
    diff = expected[1:] - expected[0][None, :]
    perts = genes[targets]
    truth = {
        "perturbations": perts.astype(str),
        "genes": genes.astype(str),
        "targets": perts.astype(str),
        "target_index": targets.astype(np.int64),
        "network": W.toarray(),
        "spectral_radius": float(radius),
        "expected_control": expected[0],
    }
    rec = {"kind": "var_network", "control": p.control_label, "version": _version(),
           "seed": seed_record(ss), "params": p.to_dict(), "truth": truth}
    is_reg = np.asarray((abs(W)).sum(axis=1)).ravel() > 0

    if p.output == "continuous":
        n, nc = p.n_samples, p.n_controls
        group = np.concatenate([np.zeros(nc, np.int64), np.repeat(np.arange(1, P + 1), n)])
        row_target = np.concatenate([np.full(nc, -1), np.repeat(targets, n)])
        g_in = np.random.default_rng(s_input)
        b = g_in.random((group.size, G))
        X = _states(W, b, row_target, p)
        if p.noise_sd > 0:
            X = X + p.noise_sd * np.random.default_rng(s_noise).standard_normal(X.shape)
        _check_states(X, "samples")
        truth.update(log2fc=diff, specific_log2fc=diff.copy(), shared_log2fc=np.zeros(G))
        rep = np.concatenate([np.arange(nc), np.tile(np.arange(n), P)])
        obs = pd.DataFrame(
            {
                "perturbation": pd.Categorical.from_codes(group, categories=[p.control_label] + list(perts)),
                "is_control": group == 0,
                "target": np.asarray([""] + list(perts), dtype=object)[group],
                "replicate": rep.astype(np.int64),
            },
            index=pd.Index([f"sample{i:06d}" for i in range(group.size)]),
        )
        var = pd.DataFrame({"base_mean": expected[0], "dispersion": np.zeros(G), "is_regulator": is_reg},
                           index=pd.Index(genes))
        return ad.AnnData(X=X, obs=obs, var=var, uns={"simpert": rec})

    # counts: the network state moves log2 means by count_scale per unit
    lfc = p.count_scale * diff
    check_finite(("count_scale", "spectral_radius", "steps", "clamp_value"), log2fc=lfc)
    g_mean = np.random.default_rng(s_mean)
    base = np.maximum(g_mean.gamma(p.mean_shape, p.mean_scale, G), p.min_mean)
    disp = p.dispersion_a0 + p.dispersion_a1 / base
    model = CountModel(
        base_mean=base, dispersion=disp, shared=np.zeros(G), effects=lfc,
        target_index=np.full(P, -1, dtype=np.int64), guide_efficiency=np.zeros(0),
        replicate_log2fc=np.zeros((1, G)), library_loc=p.library_loc, library_sd=p.library_sd,
        escape_rate=0.0, modality="crispri",
    )
    truth.update(log2fc=lfc, specific_log2fc=lfc.copy(), shared_log2fc=np.zeros(G),
                 count_target_index=np.full(P, -1, dtype=np.int64), replicate_log2fc=np.zeros((1, G)))
    rec["count_model"] = model_to_uns(model)
    sizes = np.concatenate([[p.n_controls], np.full(P, p.n_samples)])
    group = np.repeat(np.arange(P + 1), sizes)
    design = Design(group=group, guide=np.full(group.size, -1, np.int64), replicate=np.zeros(group.size, np.int64))
    out = _assemble(model, design, s_counts, rec, genes, output="cells")
    out.var["is_regulator"] = is_reg
    return out
