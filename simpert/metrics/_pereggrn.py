"""PEREGGRN's metrics (Kernfeld et al., Genome Biology 2025; ekernf01/pereggrn
``pereggrn/evaluator.py`` at commit 146e517, ``METRICS``, ``evaluate_per_pert`` and
``evaluateCausalModel``).

Every metric compares log fold changes against the training-control mean, on both sides:
observed LFC ``r_p - r_0`` and predicted LFC ``q_p - r_0``. The prediction's fold change is
taken against the *observed* control, not the prediction's own: for a split of one
perturbation set, ``evaluateCausalModel`` sets ``baseline_predicted =
baseline_observed.copy()``, the training controls. (With ``reference="centroid"`` or an
external vector both sides use that vector instead.) PEREGGRN reveals the targeted gene to
every method at its observed level, so the native target handling here is ``"reveal"``.

- pereggrn_mse: sum over genes of squared LFC error (``np.linalg.norm(...)**2``).
- pereggrn_mae: mean over genes of absolute LFC error.
- pereggrn_spearman / pereggrn_pearson: correlation of the LFC vectors.
- top-n (option ``top_n``, default 20): genes with ``rankdata(-|observed LFC|) <= n``
  (average ranks, so ties at the boundary can drop genes, as in PEREGGRN);
  pereggrn_mse_top_n (sum), pereggrn_pearson_top_n, and pereggrn_overlap_top_n =
  ``|top_n(observed) & top_n(predicted)| / n``.
- pereggrn_proportion_correct_direction: ``mean(sign(obs LFC) == sign(pred LFC))``.
- pereggrn_distance_in_pca: squared Euclidean distance between observed and predicted
  profiles projected on the first ``n_pcs`` (20) principal components of the training
  cells (every cell of the training perturbations and the controls, log-normalised), as
  ``evaluateCausalModel`` fits ``PCA(n_components=min(20, n_genes, n_cells))`` on
  ``perturbed_expression_data_train_i.X``.
- pereggrn_cell_label_accuracy: 1 when a random forest trained on the training profiles
  gives the observed and the predicted profile the same label, else 0. Labels are
  ``options["train_labels"]`` when given, otherwise k-means clusters (``n_clusters``) of
  the training profiles (PEREGGRN uses Louvain clusters of its training cells). The
  clustering and the forest are seeded (option ``seed``) and, within one ``score`` call,
  fitted once on the training profiles and reused for every prediction.

Constant fold changes: the correlations are NaN (scipy's ``pearsonr`` / ``spearmanr``
return NaN for constant input, which is what PEREGGRN's ``METRICS`` report); the error
metrics stay defined, as in PEREGGRN.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._registry import Metric, register
from ._stats import row_pearson, row_spearman, top_by_rank

__all__ = [
    "pereggrn_mse",
    "pereggrn_mae",
    "pereggrn_spearman",
    "pereggrn_pearson",
    "pereggrn_mse_top_n",
    "pereggrn_pearson_top_n",
    "pereggrn_overlap_top_n",
    "pereggrn_proportion_correct_direction",
    "pereggrn_distance_in_pca",
    "pereggrn_cell_label_accuracy",
]


def _lfc(inp):
    """Predicted and observed LFC, both against the observed reference (the training control)."""
    return inp.pred - inp.reference_real, inp.delta_real


def _keep(inp):
    return np.ones(inp.real.shape, bool) if inp.gene_mask is None else inp.gene_mask


def pereggrn_mse(inp) -> np.ndarray:
    """Sum over genes of the squared error of the LFC."""
    p, o = _lfc(inp)
    return (((o - p) ** 2) * _keep(inp)).sum(axis=1)


def pereggrn_mae(inp) -> np.ndarray:
    """Mean over genes of the absolute error of the LFC."""
    p, o = _lfc(inp)
    k = _keep(inp)
    return (np.abs(o - p) * k).sum(axis=1) / k.sum(axis=1)


def pereggrn_spearman(inp) -> np.ndarray:
    """Spearman correlation of observed and predicted LFC."""
    p, o = _lfc(inp)
    return row_spearman(o, p, inp.gene_mask)


def pereggrn_pearson(inp) -> np.ndarray:
    """Pearson correlation of observed and predicted LFC."""
    p, o = _lfc(inp)
    return row_pearson(o, p, inp.gene_mask)


def _top(x, mask, n):
    return top_by_rank(np.abs(x), n, mask)


def pereggrn_mse_top_n(inp) -> np.ndarray:
    """Sum of squared LFC errors over the top-n genes by |observed LFC|."""
    p, o = _lfc(inp)
    top = _top(o, inp.gene_mask, inp.option("top_n"))
    return (((o - p) ** 2) * top).sum(axis=1)


def pereggrn_pearson_top_n(inp) -> np.ndarray:
    """Pearson correlation of LFC over the top-n genes by |observed LFC|."""
    p, o = _lfc(inp)
    top = _top(o, inp.gene_mask, inp.option("top_n"))
    return row_pearson(o, p, top)


def pereggrn_overlap_top_n(inp) -> np.ndarray:
    """Fraction of the top-n observed genes that are among the top-n predicted genes."""
    p, o = _lfc(inp)
    n = inp.option("top_n")
    return (_top(o, inp.gene_mask, n) & _top(p, inp.gene_mask, n)).sum(axis=1) / n


def pereggrn_proportion_correct_direction(inp) -> np.ndarray:
    """Fraction of genes whose LFC sign is predicted correctly (0 counts as a sign)."""
    p, o = _lfc(inp)
    k = _keep(inp)
    return ((np.sign(o) == np.sign(p)) * k).sum(axis=1) / k.sum(axis=1)


def pca_components(X: np.ndarray, n: int) -> np.ndarray:
    """First ``n`` principal axes (rows) of ``X`` (samples x genes), as sklearn's PCA.

    Axes with a zero singular value (beyond the rank of the centred training matrix) are
    dropped: they are arbitrary, and scikit-learn refuses more components than samples.
    """
    Xc = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    rank = int(np.sum(s > (s[0] if s.size else 0.0) * 1e-10))
    return vt[: min(n, rank)]


def pca_components_cells(X, n: int, *, dense_limit: float = 2e7) -> np.ndarray:
    """First ``n`` principal axes of the cells ``X`` (dense or sparse, cells x genes).

    ``n`` is capped at ``min(n, n_cells, n_genes)`` as PEREGGRN caps it. Up to
    ``dense_limit`` matrix entries the centred matrix is decomposed by SVD (scikit-learn's
    full solver); beyond, the axes are the leading eigenvectors of the gene covariance
    matrix, accumulated from the sparse cells without densifying them.
    """
    n_cells, G = X.shape
    n = int(min(n, n_cells, G))
    if n_cells * G <= dense_limit:
        Xd = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        return pca_components(np.asarray(Xd, dtype=np.float64), n)
    Xs = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    m = np.asarray(Xs.mean(axis=0)).ravel()
    gram = Xs.T @ Xs
    gram = gram.toarray() if sp.issparse(gram) else np.asarray(gram)
    cov = gram - n_cells * np.outer(m, m)
    vals, vecs = np.linalg.eigh(cov)
    idx = np.argsort(vals)[::-1][:n]
    keep = vals[idx] > (vals[idx[0]] if idx.size else 0.0) * 1e-10
    return vecs[:, idx[keep]].T


def pereggrn_distance_in_pca(inp) -> np.ndarray:
    """Squared distance between observed and predicted profiles in the PCA space of the training cells.

    Follows PEREGGRN ``evaluator.py``: ``evaluateCausalModel`` fits
    ``PCA(n_components=min(20, n_genes, n_cells))`` on the training cells, and
    ``evaluate_per_pert`` returns ``||pca.transform(observed) - pca.transform(predicted)||^2``.
    The training cells are ``inp.real_cells`` where ``train`` is True (training
    perturbations and controls); the axes are fitted once per observed data set and reused
    for every prediction (``inp.cache``).
    """
    cells = inp.real_cells
    if cells is None or cells.train is None or not np.any(cells.train):
        raise ValueError("pereggrn_distance_in_pca needs the observed training cells (real_cells with a "
                         "training mask); PEREGGRN fits its PCA on the training cells")
    n = int(inp.option("n_pcs"))
    cache = inp.cache if inp.cache is not None else {}
    key = ("pca_train_cells", n)
    hit = cache.get(key)
    if hit is None or hit[0] is not cells:
        X = cells.X[np.flatnonzero(cells.train)]
        hit = (cells, pca_components_cells(X, n))
        cache[key] = hit
    W = hit[1]
    diff = (inp.real - inp.pred) @ W.T
    return (diff * diff).sum(axis=1)


def _label_classifier(X, labels, n_clusters, seed):
    """Random forest (100 trees) fitted on training profiles ``X``, seeded.

    Labels are ``labels`` when given, else k-means clusters (``n_init=10``) of ``X``.
    """
    from sklearn.cluster import KMeans
    from sklearn.ensemble import RandomForestClassifier

    if labels is None:
        k = min(int(n_clusters), len(X))
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X)
    labels = np.asarray(labels)
    if labels.shape[0] != X.shape[0]:
        raise ValueError(
            f"option 'train_labels' must have one label per training perturbation ({X.shape[0]}); "
            f"got {labels.shape[0]}"
        )
    return RandomForestClassifier(n_estimators=100, random_state=seed).fit(X, labels)


def pereggrn_cell_label_accuracy(inp) -> np.ndarray:
    """1 when a classifier of the training profiles labels observed and predicted alike.

    The clustering and the classifier depend only on the training profiles and the
    options, so within one :func:`simpert.metrics.score` call they are fitted once and
    reused for every prediction (``inp.cache``).
    """
    X = np.asarray(inp.train, dtype=float) if inp.train is not None else None
    if X is None or len(X) < 2:
        raise ValueError("this metric needs at least 2 training profiles")
    seed = inp.option("seed")
    labels = inp.options.get("train_labels") if hasattr(inp.options, "get") else None
    n_clusters = inp.option("n_clusters")
    key = ("cell_label_classifier", int(n_clusters), repr(seed),
           None if labels is None else np.asarray(labels).tobytes())
    cache = inp.cache if inp.cache is not None else {}
    hit = cache.get(key)
    if hit is None or hit[0] is not inp.train:
        hit = (inp.train, _label_classifier(X, labels, n_clusters, seed))
        cache[key] = hit
    clf = hit[1]
    return (clf.predict(inp.real) == clf.predict(inp.pred)).astype(float)


_SRC = "PEREGGRN"
for _name, _fn, _hib, _best, _needs, _desc in [
    ("pereggrn_mse", pereggrn_mse, False, 0.0, {"profiles"}, "sum over genes of squared LFC error"),
    ("pereggrn_mae", pereggrn_mae, False, 0.0, {"profiles"}, "mean absolute LFC error"),
    ("pereggrn_spearman", pereggrn_spearman, True, 1.0, {"profiles"}, "Spearman correlation of LFC"),
    ("pereggrn_pearson", pereggrn_pearson, True, 1.0, {"profiles"}, "Pearson correlation of LFC"),
    ("pereggrn_mse_top_n", pereggrn_mse_top_n, False, 0.0, {"profiles"}, "squared LFC error summed over the top-n observed genes"),
    ("pereggrn_pearson_top_n", pereggrn_pearson_top_n, True, 1.0, {"profiles"}, "Pearson correlation of LFC on the top-n observed genes"),
    ("pereggrn_overlap_top_n", pereggrn_overlap_top_n, True, 1.0, {"profiles"}, "overlap of top-n observed and predicted genes by |LFC|"),
    ("pereggrn_proportion_correct_direction", pereggrn_proportion_correct_direction, True, 1.0, {"profiles"}, "fraction of genes with the right LFC sign"),
    ("pereggrn_distance_in_pca", pereggrn_distance_in_pca, False, 0.0, {"profiles", "train", "real_cells"}, "squared distance in the space of 20 PCs of the training cells"),
    ("pereggrn_cell_label_accuracy", pereggrn_cell_label_accuracy, True, 1.0, {"profiles", "train"}, "same classifier label for observed and predicted profile"),
]:
    register(Metric(_name, _fn, _hib, _best, frozenset(_needs), _desc, _SRC, target="reveal",
                    reference="control" if _name not in ("pereggrn_distance_in_pca", "pereggrn_cell_label_accuracy") else None),
             overwrite=True)
