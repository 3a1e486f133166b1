"""``evaluate`` of screens stored on disk (.zarr, .h5ad with backed=True) equals the loaded screens."""

import numpy as np
import pandas as pd
import pytest

import simpert as sp

METRICS = ["pearson_delta", "mse", "discrimination_score_l1", "discrimination_score_cosine", "overlap_at_N",
           "de_spearman_lfc_sig", "de_direction_match", "perturbench_rank", "pereggrn_mse_top_n", "mse_de"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    real = sp.sim.screen(n_genes=50, n_perturbations=8, n_control_cells=40, cells_per_perturbation=14,
                         p_effect=0.3, effect_size=1.2, rng=11)
    pred = sp.sim.redraw(real, rng=12)
    # a user's layout: shuffled rows, genes in another order
    real = real[np.random.default_rng(1).permutation(real.n_obs)].copy()
    pred = pred[:, pred.var_names[::-1]].copy()
    d = tmp_path_factory.mktemp("stored")
    paths = {"real_zarr": str(d / "real.zarr"), "pred_zarr": str(d / "pred.zarr"), "real_h5ad": str(d / "real.h5ad")}
    real.write_zarr(paths["real_zarr"])
    pred.write_zarr(paths["pred_zarr"])
    real.write_h5ad(paths["real_h5ad"])
    return real, pred, paths


def _check(got, want):
    a = got.per_perturbation.sort_values(["model", "metric", "perturbation"]).reset_index(drop=True)
    b = want.per_perturbation.sort_values(["model", "metric", "perturbation"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[["model", "metric", "perturbation"]], b[["model", "metric", "perturbation"]])
    np.testing.assert_allclose(a["value"].to_numpy(float), b["value"].to_numpy(float), rtol=1e-9, atol=1e-12)
    cols = ["value", "baseline", "replicate", "score", "ci_low", "ci_high"]
    np.testing.assert_allclose(got.aggregate[cols].to_numpy(float), want.aggregate[cols].to_numpy(float),
                               rtol=1e-9, atol=1e-12)


def test_stored_equals_loaded(pair):
    real, pred, paths = pair
    ms = METRICS
    want = sp.metrics.evaluate(pred, real, metrics=ms, n_boot=50, n_splits=2)
    got = sp.metrics.evaluate(paths["pred_zarr"], paths["real_zarr"], metrics=ms, n_boot=50, n_splits=2,
                              chunk_cells=37)
    assert not want.errors and not got.errors
    _check(got, want)
    assert np.isfinite(got.aggregate["score"].to_numpy(float)).sum() >= 3  # anchors computed


def test_stored_real_loaded_pred_and_h5ad(pair):
    real, pred, paths = pair
    want = sp.metrics.evaluate(pred, real, metrics=["pearson_delta", "mse"], n_boot=20, n_splits=1)
    got = sp.metrics.evaluate(pred, paths["real_h5ad"], metrics=["pearson_delta", "mse"], n_boot=20, n_splits=1,
                              backed=True, chunk_cells=100)
    _check(got, want)


def test_stored_on_dask(pair):
    real, pred, paths = pair
    want = sp.metrics.evaluate(pred, real, metrics=["pearson_delta", "de_spearman_lfc_sig"], n_boot=0, n_splits=1)
    got = sp.metrics.evaluate(paths["pred_zarr"], paths["real_zarr"], metrics=["pearson_delta", "de_spearman_lfc_sig"],
                              n_boot=0, n_splits=1, chunk_cells=60, n_workers=2)
    _check(got, want)


def test_stored_cell_metrics_reported_not_fatal(pair):
    _, _, paths = pair
    got = sp.metrics.evaluate(paths["pred_zarr"], paths["real_zarr"], metrics=["pearson_delta", "pearson_edistance"],
                              n_boot=0, n_splits=1)
    assert np.isfinite(got.aggregate.loc["pearson_delta", "value"])
    msgs = [e for e in got.errors if e["metric"] == "pearson_edistance"]
    assert msgs and "in memory" in msgs[0]["message"]


def test_stored_refusals(pair):
    real, _, paths = pair
    with pytest.raises(ValueError, match="'profile'"):
        sp.metrics.evaluate(paths["pred_zarr"], paths["real_zarr"], profile="vcc2026")
    with pytest.raises(ValueError, match="'cell_bootstrap'"):
        sp.metrics.evaluate(paths["pred_zarr"], paths["real_zarr"], metrics=["mse"], cell_bootstrap=5)
    with pytest.raises(ValueError, match="'train'"):
        sp.metrics.evaluate(paths["pred_zarr"], paths["real_zarr"], metrics=["mse"], train=real)
    with pytest.raises(ValueError, match="'chunk_cells'"):
        sp.metrics.evaluate(paths["pred_zarr"], paths["real_zarr"], metrics=["mse"], chunk_cells=0)


def test_cli_evaluate_stored(pair, tmp_path):
    from typer.testing import CliRunner

    from simpert.cli import app

    real, pred, paths = pair
    out = tmp_path / "ev"
    r = CliRunner().invoke(app, ["evaluate", "--pred", paths["pred_zarr"], "--real", paths["real_zarr"], "-o",
                                 str(out), "-m", "pearson_delta", "-m", "mse", "--n-boot", "0", "--chunk-cells", "50"])
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out / "results.csv")
    want = sp.metrics.evaluate(pred, real, metrics=["pearson_delta", "mse"], n_boot=0).results_table()
    got = got.sort_values(list(got.columns[:1])).reset_index(drop=True)
    want = want.sort_values(list(want.columns[:1])).reset_index(drop=True)
    num = [c for c in want.columns if pd.api.types.is_numeric_dtype(want[c])]
    np.testing.assert_allclose(got[num].to_numpy(float), want[num].to_numpy(float), rtol=1e-9)


def test_stored_without_anchors_scores_the_prediction_only(pair):
    # anchors=False: no baseline or replicate rows, as in memory (kills a mutant that always
    # computes the anchors of a stored screen)
    real, pred, paths = pair
    want = sp.metrics.evaluate(pred, real, metrics=["pearson_delta", "mse"], anchors=False, n_boot=20)
    got = sp.metrics.evaluate(paths["pred_zarr"], paths["real_zarr"], metrics=["pearson_delta", "mse"],
                              anchors=False, n_boot=20, chunk_cells=50)
    assert set(got.per_perturbation["model"]) == {"prediction"} == set(want.per_perturbation["model"])
    _check(got, want)


def test_stored_input_kind_is_checked_at_its_documented_ends(pair, tmp_path):
    """Decimals up to 20 are log1p-normalised values; above 20 the stored side is refused by
    name; a stated input_type that disagrees with the values is refused, one that agrees is
    taken (the same rules as for loaded data, `detect_input_type`)."""
    real, pred, paths = pair
    lg = real.copy()
    X = np.log1p(lg.X.toarray().astype(float) / 3.0)
    X[0, 0] = 20.0  # the largest accepted value
    lg.X = X
    ok = str(tmp_path / "lognorm20.zarr")
    lg.write_zarr(ok)
    res = sp.metrics.evaluate(ok, ok, metrics=["mse"], n_boot=0, input_type="lognorm")
    assert np.allclose(res.per_perturbation.query("model == 'prediction'")["value"], 0.0)
    with pytest.raises(ValueError, match="'input_type'.*'lognorm'"):
        sp.metrics.evaluate(ok, ok, metrics=["mse"], n_boot=0, input_type="counts")
    res = sp.metrics.evaluate(paths["pred_zarr"], paths["real_zarr"], metrics=["mse"], n_boot=0, input_type="counts")
    assert len(res.per_perturbation)
    X[0, 0] = 20.5
    lg.X = X
    bad = str(tmp_path / "lognorm205.zarr")
    lg.write_zarr(bad)
    with pytest.raises(ValueError, match="decimals above 20.*maximum 20.5"):
        sp.metrics.evaluate(ok, bad, metrics=["mse"], n_boot=0)


def test_stored_chunks_of_one_cell_equal_the_loaded_screens(pair, tmp_path):
    real, pred, _ = pair
    keep = ["control"] + sorted(set(real.obs["perturbation"]) - {"control"})[:2]
    real = real[real.obs["perturbation"].isin(keep)][:40].copy()
    pred = pred[pred.obs["perturbation"].isin(keep)].copy()
    real.write_zarr(str(tmp_path / "r.zarr"))
    got = sp.metrics.evaluate(pred, str(tmp_path / "r.zarr"), metrics=["mse", "pearson_delta"], n_boot=0,
                              chunk_cells=1)
    want = sp.metrics.evaluate(pred, real, metrics=["mse", "pearson_delta"], n_boot=0)
    _check(got, want)


def test_stored_values_above_20_are_refused_across_chunks(pair, tmp_path):
    """Decimals in one chunk make the side log-normalised; then a value above 20 anywhere is
    refused, even when it sits in a chunk of whole numbers (which alone would read as
    counts): here 21 in the first chunk."""
    real, _, _ = pair
    lg = real.copy()
    X = np.log1p(lg.X.toarray().astype(float) / 3.0)
    X[:10] = np.round(X[:10])
    X[0, 0] = 21.0
    lg.X = X
    path = str(tmp_path / "mixed.zarr")
    lg.write_zarr(path)
    with pytest.raises(ValueError, match="decimals above 20.*maximum 21"):
        sp.metrics.evaluate(path, path, metrics=["mse"], n_boot=0, chunk_cells=10)
