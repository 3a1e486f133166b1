"""Out-of-core screens: chunked on Dask to Zarr, the bytes of the in-memory screen."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import simpert as sp

pytest.importorskip("distributed")

KW = dict(n_genes=120, n_perturbations=6, n_control_cells=200, cells_per_perturbation=40, n_replicates=2,
          escape_rate=0.2, systematic_strength=0.5, rng=7)


@pytest.fixture(scope="module")
def in_memory():
    return sp.sim.screen(**KW)


@pytest.fixture(scope="module")
def clients():
    """One LocalCluster per worker count, shared by the tests (starting one costs seconds)."""
    import distributed

    out = {}
    for n in (1, 2):
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        out[n] = (cluster, distributed.Client(cluster))
    yield {n: c for n, (_, c) in out.items()}
    for cluster, client in out.values():
        client.close()
        cluster.close()


@pytest.mark.parametrize("chunk,workers,write_from", [(37, 1, "workers"), (37, 2, "workers"), (500, 1, "workers"),
                                                      (500, 2, "workers"), (5, 2, "workers"), (37, 2, "client")])
def test_chunked_zarr_equals_in_memory(in_memory, tmp_path, chunk, workers, write_from, clients):
    """Chunks of 37 and 500 cells span several Zarr blocks (the workers write the middles);
    chunks of 5 cells are shorter than a block (only the seams, written by this process)."""
    path = sp.sim.screen(out=tmp_path / "s.zarr", chunk_cells=chunk, client=clients[workers],
                         write_from=write_from, **KW)
    z = ad.read_zarr(path)
    assert z.X.dtype == in_memory.X.dtype and z.shape == in_memory.shape
    assert (z.X != in_memory.X).nnz == 0
    np.testing.assert_array_equal(z.X.indptr, in_memory.X.indptr)
    for col in ("perturbation", "replicate", "size_factor", "knockdown", "escaped", "guide"):
        assert (z.obs[col].astype(str).to_numpy() == in_memory.obs[col].astype(str).to_numpy()).all(), col
    t_mem, t_z = sp.sim.truth(in_memory), sp.sim.truth(z)
    np.testing.assert_array_equal(np.asarray(t_z.log2fc), np.asarray(t_mem.log2fc))
    assert list(t_z.targets) == list(t_mem.targets)
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]
    assert not (path / "parts").exists()  # the workers' temporary parts are gone


def test_streaming_pseudobulk_equals_in_memory(in_memory, tmp_path, clients):
    path = sp.sim.screen(out=tmp_path / "s.zarr", chunk_cells=100, client=clients[1], **KW)
    ref = sp.sim.pseudobulk(in_memory, by=("perturbation", "replicate"))
    for client in ("serial", clients[2]):
        pb = sp.sim.pseudobulk_zarr(path, chunk_cells=53, client=client)
        np.testing.assert_array_equal(pb.X, ref.X)
        assert list(pb.obs_names) == list(ref.obs_names)
    # the same from an h5ad file of the cells
    in_memory.write_h5ad(tmp_path / "s.h5ad")
    pb = sp.sim.pseudobulk_zarr(tmp_path / "s.h5ad", chunk_cells=71, client="serial")
    np.testing.assert_array_equal(pb.X, ref.X)
    # and DE runs on it
    de = sp.de.deseq(pb, control="control")
    assert len(de.table) == 6 * 120


def test_streaming_profiles_equal_in_memory(in_memory, tmp_path, clients):
    from simpert._profiles import group_profiles

    path = sp.sim.screen(out=tmp_path / "s.zarr", chunk_cells=100, client=clients[1], **KW)
    ref = group_profiles(in_memory)
    for client in ("serial", clients[2]):
        got = sp.sim.profiles_zarr(path, chunk_cells=61, client=client)
        np.testing.assert_allclose(got.to_numpy(), ref.loc[got.index].to_numpy(), rtol=1e-12, atol=1e-14)
        assert list(got.index) == list(ref.index)


def test_own_local_cluster(tmp_path, in_memory):
    """Without a client, a LocalCluster is started and closed."""
    path = sp.sim.screen(out=tmp_path / "s.zarr", chunk_cells=300, n_workers=1, **KW)
    assert (ad.read_zarr(path).X != in_memory.X).nnz == 0


def test_out_refuses_user_directories_and_bad_paths(tmp_path):
    mine = tmp_path / "mine.zarr"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a simpert output"):
        sp.sim.screen(out=mine, **KW)
    assert (mine / "notes.txt").read_text() == "keep"
    with pytest.raises(ValueError, match="'out'"):
        sp.sim.screen(out=tmp_path / "s.h5ad", **KW)
    with pytest.raises(ValueError, match="'out'"):
        sp.sim.screen(out=tmp_path / "s.zarr", output="pseudobulk", **KW)
    with pytest.raises(ValueError, match="'chunk_cells'"):
        sp.sim.screen(out=tmp_path / "s.zarr", chunk_cells=0, **KW)


def test_large_screens_store_int64_row_pointers(tmp_path, monkeypatch, in_memory, clients):
    """Past 2^31 - 1 non-zeros int32 row pointers would wrap: large screens store int64."""
    import zarr

    from simpert.sim import _chunked

    monkeypatch.setattr(_chunked, "INDEX_LIMIT", 1000)
    path = sp.sim.screen(out=tmp_path / "s.zarr", chunk_cells=100, client=clients[1], **KW)
    g = zarr.open_group(path, mode="r")
    assert g["X"]["indptr"].dtype == np.int64 and g["X"]["indices"].dtype == np.int64
    assert (ad.read_zarr(path).X != in_memory.X).nnz == 0


#: A screen with the realism features on: Hill dose response, latent programs, batches,
#: multiplets, cells without a guide, double perturbations and contexts.
KW_REAL = dict(KW, dose_response="hill", hill_coefficient=3.0, hill_half=0.4, n_programs=2, program_shift_sd=0.4,
               n_batches=3, batch_sd=0.3, modality="ko", unmeasured_targets=1, multiplet_rate=0.3,
               no_guide_rate=0.1, n_combinations=3, interaction="mixed", n_contexts=2, context_shared=0.5)


@pytest.mark.parametrize("chunk,workers", [(37, 2), (500, 1)])
def test_chunked_zarr_with_realism_features_equals_in_memory(tmp_path, chunk, workers, clients):
    mem = sp.sim.screen(**KW_REAL)
    path = sp.sim.screen(out=tmp_path / "s.zarr", chunk_cells=chunk, client=clients[workers], **KW_REAL)
    z = ad.read_zarr(path)
    assert z.X.dtype == mem.X.dtype and z.shape == mem.shape
    assert (z.X != mem.X).nnz == 0
    np.testing.assert_array_equal(z.X.indptr, mem.X.indptr)
    assert list(z.obs.columns) == list(mem.obs.columns)
    for col in ("perturbation", "batch", "context", "knockdown", "escaped", "program_0", "program_1", "n_guides",
                "second_perturbation", "second_guide", "second_knockdown"):
        assert (z.obs[col].astype(str).to_numpy() == mem.obs[col].astype(str).to_numpy()).all(), col
    np.testing.assert_array_equal(np.asarray(sp.sim.truth(z).log2fc), np.asarray(sp.sim.truth(mem).log2fc))
    # streamed pseudobulk by perturbation x batch equals the in-memory one
    pb = sp.sim.pseudobulk_zarr(path, by=("perturbation", "batch"), chunk_cells=41, client="serial")
    np.testing.assert_array_equal(pb.X, sp.sim.pseudobulk(mem, by=("perturbation", "batch")).X)


@pytest.mark.parametrize("chunk,G,want", [
    (1024, 1024, 1 << 17),      # an eighth of the dense chunk, a power of two already
    (1000, 1000, 1 << 16),      # 125,000 -> the power of two below
    (10, 10, 1 << 8),           # floor 2^8
    (100_000, 8000, 1 << 20),   # ceiling 2^20
    (1, 1, 1 << 8),
])
def test_zarr_block_is_the_power_of_two_below_an_eighth_of_a_dense_chunk(chunk, G, want):
    from simpert.sim._chunked import _block_size

    assert _block_size(chunk, G) == want
