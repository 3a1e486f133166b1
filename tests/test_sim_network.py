"""Networks and the VAR simulator: scaling, steady state = linear solve, counts output."""

from __future__ import annotations

import gzip
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sps

import simpert.sim as sim


def _direct_clamped(W, b, t, v):
    """x = b' + x W' with column t of W zeroed and b'_t = v, by a dense solve per row."""
    Wc = W.copy()
    bc = b.copy()
    if t >= 0:
        Wc[:, t] = 0.0
        bc[:, t] = v
    A = np.eye(W.shape[0]) - Wc
    return np.linalg.solve(A.T, bc.T).T


def test_steady_state_equals_linear_solve_and_iteration():
    net = sim.erdos_renyi(40, 0.15, signed=True, rng=1)
    rng = np.random.default_rng(0)
    W = net.to_dense()
    W = W * (0.6 / np.max(np.abs(np.linalg.eigvals(W))))
    b = rng.random((12, 40))
    target = np.array([-1, 0, 0, 3, 5, 5, 39, 17, 17, 17, -1, 2])
    ss = sim.steady_state(W, b, target, clamp_value=1.5)
    direct = np.vstack([_direct_clamped(W, b[i:i + 1], target[i], 1.5) for i in range(12)])
    np.testing.assert_allclose(ss, direct, rtol=1e-10, atol=1e-12)
    rows = target >= 0
    np.testing.assert_allclose(ss[rows, target[rows]], 1.5)
    # iterating x_t = b + x_{t-1} W (clamped each step) converges to the linear solve
    it = sim.iterate(W, b, target, 200, clamp_value=1.5, persistent=True)
    np.testing.assert_allclose(it, ss, rtol=1e-9, atol=1e-10)
    it_few = sim.iterate(W, b, target, 3, clamp_value=1.5, persistent=True)
    assert np.max(np.abs(it_few - ss)) > 1e-3


def test_pereggrn_one_step_recursion():
    net = sim.erdos_renyi(30, 0.2, rng=2)
    W = net.to_dense() * 0.05
    b = np.random.default_rng(1).random((4, 30))
    target = np.array([1, 2, -1, 7])
    x = sim.iterate(W, b, target, 1, clamp_value=1.0, persistent=False)
    manual = b @ W
    for i, t in enumerate(target):
        if t >= 0:
            manual[i, t] = 1.0
    np.testing.assert_allclose(x, manual)


def test_spectral_radius_scaling_and_stability_error():
    net = sim.erdos_renyi(60, 0.1, rng=3)
    a = sim.var_network(net, spectral_radius=0.3, steps=None, n_samples=2, n_controls=2, rng=0)
    W = np.asarray(a.uns["simpert"]["truth"]["network"])
    assert abs(np.max(np.abs(np.linalg.eigvals(W))) - 0.3) < 1e-8
    np.testing.assert_allclose(W / W[W != 0].max(), net.to_dense() / net.to_dense().max())
    with pytest.raises(ValueError, match=r"parameter 'spectral_radius' must be .*\(0, 1\).*got 1.2"):
        sim.var_network(net, spectral_radius=1.2, steps=None, rng=0)
    big = sim.network_from_edges([("a", "b", 2.0), ("b", "a", 2.0)])
    with pytest.raises(ValueError, match="spectral_radius"):
        sim.var_network(big, spectral_radius=None, steps=None, rng=0)
    # with finite steps an unscaled unstable network is allowed
    sim.var_network(big, spectral_radius=None, steps=2, n_samples=1, n_controls=1, rng=0)


def test_acyclic_network_scaled_by_row_sums():
    net = sim.scale_free(200, 2, rng=4)
    W = net.to_dense()
    assert np.allclose(np.tril(W), 0)  # acyclic: earlier genes regulate later ones
    out_deg = (W != 0).sum(1)
    assert out_deg.max() > 5 * out_deg.mean()  # hubs
    assert ((W != 0).sum(0)[2:] == 2).all()
    a = sim.var_network(net, spectral_radius=0.2, steps=None, n_samples=1, n_controls=1, perturb=["g00000"], rng=0)
    Ws = np.asarray(a.uns["simpert"]["truth"]["network"])
    assert abs(np.abs(Ws).sum(1).max() - 0.2) < 1e-12


def test_erdos_renyi_density():
    net = sim.erdos_renyi(300, 0.05, rng=5)
    n_pairs = 300 * 299
    assert abs(net.n_edges / n_pairs - 0.05) < 4 * np.sqrt(0.05 * 0.95 / n_pairs)
    assert np.all(np.diag(net.to_dense()) == 0)


def test_continuous_truth_matches_sample_means():
    net = sim.erdos_renyi(25, 0.2, signed=True, rng=6)
    a = sim.var_network(net, spectral_radius=0.5, steps=None, n_samples=4000, n_controls=4000,
                        perturb=["g00003", "g00010"], clamp_value=2.0, rng=1)
    t = sim.truth(a)
    assert t.network is not None and t.network.shape == (25, 25)
    x = a.X
    ctrl = x[a.obs.is_control.to_numpy()].mean(0)
    for p in t.perturbations:
        rows = a.obs.perturbation.to_numpy() == p
        diff = x[rows].mean(0) - ctrl
        se = np.sqrt(x[rows].var(0) / rows.sum() + x[~rows & a.obs.is_control.to_numpy()].var(0) / 4000)
        z = (diff - t.log2fc.loc[p].to_numpy()) / np.maximum(se, 1e-12)
        assert np.max(np.abs(z)) < 5
        assert np.allclose(x[rows][:, list(t.genes).index(p)], 2.0)


def test_count_output_schema_roundtrip_and_redraw(tmp_path):
    net = sim.erdos_renyi(30, 0.2, rng=7)
    a = sim.var_network(net, output="counts", count_scale=2.0, n_samples=30, n_controls=60,
                        spectral_radius=0.5, steps=None, clamp_value=0.0, rng=2)
    assert sps.issparse(a.X) and a.X.dtype == np.int32
    t = sim.truth(a)
    assert t.kind == "var_network"
    # clamping at 0 lowers the target: negative log2fc on the diagonal
    diag = np.array([t.log2fc.loc[p, p] for p in t.perturbations])
    assert np.all(diag < 0)
    a.write_h5ad(tmp_path / "v.h5ad")
    back = ad.read_h5ad(tmp_path / "v.h5ad")
    pd.testing.assert_frame_equal(sim.truth(back).network, t.network)
    r = sim.redraw(back, rng=3)
    assert r.shape == a.shape and (r.X != a.X).nnz > 0
    mu = sim.expected_counts(a)
    assert abs(a.X.sum() - mu.sum()) < 5 * np.sqrt((mu + a.var.dispersion.to_numpy() * mu**2).sum())


def test_network_from_edges_and_sif(tmp_path):
    df = pd.DataFrame({"source": ["A", "A", "B"], "target": ["B", "C", "C"], "weight": [0.5, -1.0, 2.0]})
    net = sim.network_from_edges(df)
    assert net.genes == ("A", "B", "C")
    np.testing.assert_allclose(net.to_dense(), [[0, 0.5, -1.0], [0, 0, 2.0], [0, 0, 0]])
    net2 = sim.network_from_edges([("A", "B"), ("B", "C")], genes=["C", "B", "A"])
    assert net2.weights[2, 1] == 1.0 and net2.weights[1, 0] == 1.0
    with pytest.raises(ValueError, match="parameter 'genes'"):
        sim.network_from_edges([("A", "Z")], genes=["A"])
    path = tmp_path / "toy.sif.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("TF1\tcontrols-expression-of\tG1\n")
        fh.write("TF1\tcontrols-expression-of\tG2\n")
        fh.write("TF2\tcontrols-expression-of\tTF1\n")
        fh.write("TF2\tin-complex-with\tG3\n")
        fh.write("TF1\tcontrols-expression-of\tG1\n")
    sif = sim.network_from_sif(path)
    assert set(sif.genes) == {"TF1", "TF2", "G1", "G2"}
    assert sif.n_edges == 3
    assert set(sif.regulators()) == {"TF1", "TF2"}
    assert sim.network_from_sif(path, interactions=None).n_edges == 4
    sub = sif.subset(["TF1", "G1"])
    assert sub.n_edges == 1


def test_pathway_commons_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "enricher", None)
    with pytest.raises(ImportError, match=r"simpert\[network\]"):
        sim.pathway_commons()


def test_bad_network_inputs():
    with pytest.raises(TypeError, match="parameter 'network'"):
        sim.var_network(np.eye(3))
    net = sim.erdos_renyi(5, 0.5, rng=0)
    with pytest.raises(ValueError, match="parameter 'perturb'"):
        sim.var_network(net, perturb=["nope"])
    with pytest.raises(ValueError, match="parameter 'p'"):
        sim.erdos_renyi(5, 1.5)
    with pytest.raises(ValueError, match="parameter 'm'"):
        sim.scale_free(5, 5)


def test_sparse_spectral_radius_equals_the_dense_one(monkeypatch):
    # above _DENSE_MAX genes the radius comes from ARPACK (one eigenvalue of largest modulus);
    # with the limit lowered, a 300-gene sparse network takes that path and equals the
    # dense eigenvalues' largest modulus
    import scipy.sparse as sps

    import simpert.sim._var as var

    g = np.random.default_rng(5)
    W = sps.random(300, 300, density=0.02, random_state=g, data_rvs=lambda k: g.normal(0, 0.5, k)).tocsr()
    want = float(np.max(np.abs(np.linalg.eigvals(W.toarray()))))
    monkeypatch.setattr(var, "_DENSE_MAX", 100)
    assert var.spectral_radius(W) == pytest.approx(want, rel=1e-8)
    assert var.spectral_radius(sps.csr_matrix((300, 300))) == 0.0


def test_measurement_noise_is_gaussian_with_the_given_sd():
    """Continuous output: the same seed with and without noise differs by independent
    N(0, noise_sd^2) draws (mean 0, SD noise_sd, normal tails)."""
    from scipy import stats

    net = sim.erdos_renyi(40, 0.1, rng=2)
    kw = dict(spectral_radius=0.5, steps=None, n_samples=20, n_controls=40, rng=4)
    clean = sim.var_network(net, noise_sd=0.0, **kw).X
    noisy = sim.var_network(net, noise_sd=0.3, **kw).X
    d = np.asarray(noisy - clean).ravel()
    assert d.size > 30_000
    assert abs(d.mean()) < 4 * 0.3 / np.sqrt(d.size)
    assert d.std(ddof=1) == pytest.approx(0.3, rel=0.02)  # SE of an SD over 30,000 draws: 0.4%
    assert stats.kstest(d / 0.3, "norm").pvalue > 1e-3


def test_spectral_radius_against_numpy_on_every_path(monkeypatch):
    """The largest absolute eigenvalue, dense and sparse, small matrices included (0 x 0,
    1 x 1 with a self-loop, an empty sparse matrix); the sparse Arnoldi path (above
    _DENSE_MAX genes) is reached here by lowering the threshold."""
    import scipy.sparse as sps

    from simpert.sim import _var

    rng = np.random.default_rng(0)
    mats = [rng.normal(size=(6, 6)) * (rng.random((6, 6)) < 0.5), np.array([[0.5]]), np.zeros((0, 0)),
            np.diag([0.0, 0.0, -0.7, 0.0, 0.0]), np.zeros((5, 5))]
    for dense_max in (4000, 2):
        monkeypatch.setattr(_var, "_DENSE_MAX", dense_max)
        for M in mats:
            want = float(np.max(np.abs(np.linalg.eigvals(M)))) if M.size else 0.0
            for form in (M, sps.csr_matrix(M)):
                assert sim.spectral_radius(form) == pytest.approx(want, rel=1e-8, abs=1e-12), (dense_max, M)


def test_steady_state_refuses_a_spectral_radius_of_one():
    net = sim.erdos_renyi(6, 0.5, rng=1)
    sim.var_network(net, spectral_radius=0.999, steps=None, n_samples=2, n_controls=2, rng=0)
    with pytest.raises(ValueError, match="parameter 'spectral_radius'"):
        sim.var_network(net, spectral_radius=1.0, steps=None, n_samples=2, n_controls=2, rng=0)


def test_regulators_are_the_genes_with_outgoing_edges():
    net = sim.network_from_edges([("a", "b", 0.5), ("b", "c", -0.3), ("a", "c", 0.2)], genes=["a", "b", "c", "d"])
    out = sim.var_network(net, n_samples=2, n_controls=2, rng=0)
    assert list(out.var["is_regulator"]) == [True, True, False, False]


def test_iterate_defaults_clamp_at_one_with_persistent_input():
    W = np.array([[0.0, 0.5], [0.2, 0.0]])
    x0 = np.array([[0.3, 0.4], [0.3, 0.4]])
    target = np.array([-1, 0])
    got = sim.iterate(W, x0, target, 3)
    x = x0.copy()
    for _ in range(3):
        x = x0 + x @ W
        x[1, 0] = 1.0
    np.testing.assert_allclose(got, x, rtol=1e-12)
    np.testing.assert_allclose(sim.steady_state(W, x0, target), sim.steady_state(W, x0, target, 1.0), rtol=0)
    xs = sim.steady_state(W, x0, target)
    assert xs[1, 0] == 1.0
    np.testing.assert_allclose(xs[0], x0[0] @ np.linalg.inv(np.eye(2) - W), rtol=1e-12)


def test_a_one_gene_network_is_simulated_and_an_empty_one_refused():
    net = sim.network_from_edges([], genes=["solo"])
    out = sim.var_network(net, n_samples=2, n_controls=3, rng=0)
    assert out.n_vars == 1 and set(out.obs["perturbation"]) == {"control", "solo"}
    # the clamped gene sits at the clamp value; the controls at their own input
    assert np.allclose(out[out.obs["perturbation"] == "solo"].X, 1.0)
    with pytest.raises(ValueError, match="parameter 'network'"):
        sim.var_network(sim.Network((), sps.csr_matrix((0, 0))), rng=0)
