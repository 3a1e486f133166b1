"""Gene regulatory networks for the VAR simulator: random, from edges, PathwayCommons."""

from __future__ import annotations

import gzip
import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._random import as_generator
from .._validation import Integer, Interval, check, fail
from ._screen import gene_names

__all__ = [
    "Network",
    "erdos_renyi",
    "scale_free",
    "network_from_edges",
    "network_from_sif",
    "pathway_commons",
    "PATHWAY_COMMONS_FILE",
]

PATHWAY_COMMONS_FILE = "PathwayCommons9.All.hgnc.sif.gz"


@dataclass(frozen=True, eq=False)
class Network:
    """A directed weighted network on named genes.

    Attributes
    ----------
    genes : tuple of str
        Gene names (rows and columns of ``weights``).
    weights : scipy.sparse.csr_matrix, shape (G, G)
        Entry [i, j]: effect of gene i on gene j (0 = no edge).
    """

    genes: tuple
    weights: sp.csr_matrix

    def __post_init__(self):
        w = sp.csr_matrix(self.weights, dtype=np.float64)
        G = len(self.genes)
        if w.shape != (G, G):
            raise ValueError(f"parameter 'weights' must have shape (n_genes, n_genes) = ({G}, {G}); got {w.shape}")
        if len(set(self.genes)) != G:
            raise ValueError("parameter 'genes' must hold unique names; got duplicates")
        if w.nnz and not np.all(np.isfinite(w.data)):
            raise ValueError("parameter 'weights' must be finite; got NaN or inf")
        object.__setattr__(self, "genes", tuple(str(g) for g in self.genes))
        object.__setattr__(self, "weights", w)

    @property
    def n_genes(self) -> int:
        """Number of genes."""
        return len(self.genes)

    @property
    def n_edges(self) -> int:
        """Number of non-zero edges."""
        return int(self.weights.count_nonzero())

    def to_dense(self) -> np.ndarray:
        """The weights as a dense array (G x G)."""
        return self.weights.toarray()

    def to_frame(self) -> pd.DataFrame:
        """The edges as a DataFrame with columns ``source``, ``target``, ``weight``."""
        coo = self.weights.tocoo()
        g = np.asarray(self.genes, dtype=object)
        return pd.DataFrame({"source": g[coo.row], "target": g[coo.col], "weight": coo.data})

    def subset(self, genes) -> "Network":
        """The subnetwork induced by ``genes`` (in the given order).

        Parameters
        ----------
        genes : sequence of str

        Returns
        -------
        Network
        """
        pos = {g: i for i, g in enumerate(self.genes)}
        missing = [g for g in genes if g not in pos]
        if missing:
            fail("genes", "a sequence of genes of the network", missing[:5])
        idx = np.array([pos[g] for g in genes], dtype=np.int64)
        return Network(tuple(genes), self.weights[idx][:, idx])

    def regulators(self) -> tuple:
        """Genes with at least one outgoing edge."""
        out = np.diff(self.weights.indptr) > 0
        return tuple(np.asarray(self.genes, dtype=object)[out])

    def __repr__(self) -> str:
        return f"Network(n_genes={self.n_genes}, n_edges={self.n_edges})"


def erdos_renyi(n_genes: int, p: float, *, signed: bool = False, rng=None) -> Network:
    """Directed Erdos-Renyi network: each ordered pair i != j is an edge with probability p.

    Parameters
    ----------
    n_genes : int
    p : float in [0, 1]
    signed : bool, default False
        Weights +-1 with random signs; otherwise 1 (the PEREGGRN convention).
    rng : None, int, SeedSequence or Generator

    Returns
    -------
    Network
    """
    check("n_genes", n_genes, Integer(1))
    check("p", p, Interval(0, 1))
    g = as_generator(rng)
    G = int(n_genes)
    u = g.random((G, G))
    s = np.where(g.random((G, G)) < 0.5, -1.0, 1.0) if signed else np.ones((G, G))
    w = np.where(u < p, s, 0.0)
    np.fill_diagonal(w, 0.0)
    return Network(tuple(gene_names(G)), sp.csr_matrix(w))


def scale_free(n_genes: int, m: int, *, signed: bool = False, rng=None) -> Network:
    """Directed scale-free network by preferential attachment (Barabasi-Albert).

    Each new gene receives edges from ``m`` distinct earlier genes chosen with probability
    proportional to their degree (+1), so hubs regulate many genes. The network is acyclic.

    Parameters
    ----------
    n_genes : int
    m : int
        Regulators of each new gene (1 <= m < n_genes).
    signed : bool, default False
    rng : None, int, SeedSequence or Generator

    Returns
    -------
    Network
    """
    check("n_genes", n_genes, Integer(2))
    check("m", m, Integer(1, int(n_genes) - 1 if isinstance(n_genes, int) else None))
    g = as_generator(rng)
    G, m = int(n_genes), int(m)
    src, dst = [], []
    pool = list(range(m))  # each node appears (degree + 1) times
    for j in range(m, G):
        chosen: set = set()
        while len(chosen) < m:
            chosen.add(pool[int(g.integers(0, len(pool)))])
        for i in chosen:
            src.append(i)
            dst.append(j)
        pool.extend(chosen)
        pool.extend([j] * (m + 1))
    src_a, dst_a = np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64)
    s = np.where(g.random(src_a.size) < 0.5, -1.0, 1.0) if signed else np.ones(src_a.size)
    w = sp.csr_matrix((s, (src_a, dst_a)), shape=(G, G))
    return Network(tuple(gene_names(G)), w)


def network_from_edges(edges, *, genes=None) -> Network:
    """Network from an edge list.

    Parameters
    ----------
    edges : DataFrame or sequence of tuples
        A DataFrame with columns ``source`` and ``target`` (``regulator`` is accepted for
        ``source``) and an optional ``weight``; or tuples ``(source, target)`` /
        ``(source, target, weight)``. Repeated edges add up.
    genes : sequence of str or None
        Gene order; by default the sorted union of sources and targets. Edges with genes
        outside ``genes`` raise.

    Returns
    -------
    Network
    """
    if isinstance(edges, pd.DataFrame):
        df = edges.rename(columns={"regulator": "source"})
        if not {"source", "target"} <= set(df.columns):
            fail("edges", "a DataFrame with columns 'source' and 'target'", list(df.columns))
        src = df["source"].astype(str).to_numpy()
        dst = df["target"].astype(str).to_numpy()
        w = df["weight"].to_numpy(dtype=float) if "weight" in df else np.ones(len(df))
    else:
        try:
            rows = [tuple(e) for e in edges]
        except TypeError:
            fail("edges", "a DataFrame or a sequence of (source, target[, weight]) tuples", edges, exc=TypeError)
        if any(len(r) not in (2, 3) for r in rows):
            fail("edges", "a sequence of (source, target[, weight]) tuples", rows[:3])
        src = np.array([str(r[0]) for r in rows], dtype=object)
        dst = np.array([str(r[1]) for r in rows], dtype=object)
        w = np.array([float(r[2]) if len(r) == 3 else 1.0 for r in rows])
    if not np.all(np.isfinite(w)):
        fail("edges", "finite edge weights", f"{int(np.sum(~np.isfinite(w)))} non-finite weight(s)")
    if genes is None:
        genes = sorted(set(src) | set(dst))
    genes = [str(x) for x in genes]
    if not genes:
        fail("edges", "at least one edge (or a non-empty 'genes')", edges if len(src) else [])
    pos = {g: i for i, g in enumerate(genes)}
    bad = [x for x in np.concatenate([src, dst]) if x not in pos]
    if bad:
        fail("genes", "a sequence naming every gene of the edges", f"missing {bad[:5]}")
    i = np.fromiter((pos[x] for x in src), dtype=np.int64, count=len(src))
    j = np.fromiter((pos[x] for x in dst), dtype=np.int64, count=len(dst))
    W = sp.csr_matrix((w, (i, j)), shape=(len(genes), len(genes)))
    W.sum_duplicates()
    return Network(tuple(genes), W)


def network_from_sif(path, *, interactions=("controls-expression-of",), genes=None) -> Network:
    """Network from a SIF file (``source<TAB>interaction<TAB>target``, optionally gzipped).

    Parameters
    ----------
    path : str or path-like
    interactions : sequence of str or None, default ("controls-expression-of",)
        Interaction types kept; None keeps all.
    genes : sequence of str or None
        Passed to :func:`network_from_edges`.

    Returns
    -------
    Network
        Unit weights; repeated edges count once.
    """
    path = Path(os.fspath(path))
    if not path.exists():
        fail("path", "an existing SIF file", str(path))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        df = pd.read_csv(fh, sep="\t", header=None, usecols=[0, 1, 2], names=["source", "interaction", "target"],
                         dtype=str, comment="#")
    if interactions is not None:
        df = df[df["interaction"].isin(list(interactions))]
    df = df.drop_duplicates(["source", "target"])
    return network_from_edges(df[["source", "target"]], genes=genes)


def pathway_commons(*, interactions=("controls-expression-of",)) -> Network:
    """The PathwayCommons 9 network shipped in the optional package regulon-enrichment.

    Parameters
    ----------
    interactions : sequence of str or None, default ("controls-expression-of",)

    Returns
    -------
    Network
        About 122,785 edges from 1,513 regulators (HGNC symbols). Use :meth:`Network.subset`
        to keep a manageable set of genes for :func:`var_network`.

    Raises
    ------
    ImportError
        When regulon-enrichment (import name ``enricher``) is not installed; install the
        extra ``simpert[network]``.
    """
    try:
        enricher = importlib.import_module("enricher")
    except ImportError as err:
        raise ImportError(
            "pathway_commons() needs the optional package 'regulon-enrichment' (import name "
            "'enricher'); install it with: pip install 'simpert[network]'"
        ) from err
    base = Path(getattr(enricher, "__file__", "") or "").parent
    path = base / "data" / PATHWAY_COMMONS_FILE
    if not path.exists():
        raise ImportError(
            f"the installed regulon-enrichment has no data/{PATHWAY_COMMONS_FILE} (looked in {base}); "
            "reinstall it with: pip install --force-reinstall 'simpert[network]'"
        )
    return network_from_sif(path, interactions=interactions)

