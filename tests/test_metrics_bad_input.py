"""Bad input: one line per case, each error naming the parameter and what was given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import simpert.metrics as sm
from simpert.metrics import Metric, score
from simpert.predict._types import Prediction, Predictions, Split

from _metrics_data import nb_screen, observed, profile_prediction


@pytest.fixture(scope="module")
def case():
    adata, _, _ = nb_screen(n_genes=20, n_perts=6, cells=10, n_ctrl=20, seed=1, named_by_target=False)
    perts = [str(p) for p in adata.obs["perturbation"].cat.categories[1:]]
    split = Split(train=tuple(perts[:3]), test=tuple(perts[3:]))
    prof = observed(adata)
    pred = profile_prediction("m", adata, prof.loc[list(split.test)].to_numpy(), split.test)
    return adata, split, Predictions([pred]), prof


def _other_genes(adata, split, prof):
    df = prof.loc[list(split.test)].copy()
    df.columns = [f"x{i}" for i in range(df.shape[1])]
    return Predictions([Prediction("m", df, pd.Series(0.0, index=df.columns))])


def _missing_pert(adata, split, prof):
    df = prof.loc[list(split.test[:-1])]
    return Predictions([Prediction("m", df, prof.loc["control"])])


CASES = [
    # (id, kwargs or callable building kwargs, exception, text the message must contain)
    ("unknown metric", dict(metrics=["pearson_deltaa"]), ValueError, "unknown metric 'pearson_deltaa'"),
    ("metric wrong type", dict(metrics=[3]), TypeError, "parameter 'metrics'"),
    ("repeated metric", dict(metrics=["mse", "mse"]), ValueError, "must not repeat"),
    ("no metrics", dict(metrics=None), ValueError, "parameter 'metrics'"),
    ("bad target", dict(target="drop"), ValueError, "parameter 'target' must be one of"),
    ("bad reference", dict(reference="median"), ValueError, "parameter 'reference' must be one of"),
    ("reference wrong length", dict(reference=np.zeros(5)), ValueError, "parameter 'reference' must be a finite vector of length 20"),
    ("reference with NaN", dict(reference=np.full(20, np.nan)), ValueError, "parameter 'reference'"),
    ("bad weights option", dict(weights="test"), ValueError, "parameter 'weights' must be one of"),
    ("negative weights", dict(weights=-np.ones(20)), ValueError, "parameter 'weights' must be"),
    ("weights wrong shape", dict(weights=np.ones((2, 20))), ValueError, "got array of shape (2, 20)"),
    ("zero target_sum", dict(target_sum=0), ValueError, "parameter 'target_sum'"),
    ("unknown option", dict(options={"topn": 3}), ValueError, "parameter 'options'"),
    ("split not a Split", dict(split=("a", "b")), TypeError, "parameter 'split'"),
    ("preds not predictions", dict(preds="oracle"), TypeError, "parameter 'preds'"),
    ("mismatched genes", "other_genes", ValueError, "genes of adata"),
    ("missing test perturbation", "missing_pert", ValueError, "must predict every test perturbation"),
    ("unknown test perturbation", dict(split=Split(train=(), test=("nope",))), ValueError, "unknown test perturbations ['nope']"),
    ("unknown control", dict(split=Split(train=(), test=("p03",), control="ctrl")), ValueError, "control label"),
    ("DE metric without DE", dict(metrics=["overlap_at_N"], de={}), ValueError, "parameter 'de' must have a table for 'real'"),
    ("DE not a mapping", dict(metrics=["overlap_at_N"], de=[1]), TypeError, "parameter 'de' must be a mapping"),
    ("DE table without columns", dict(metrics=["overlap_at_N"], de={"real": pd.DataFrame({"a": [1]}), "m": pd.DataFrame({"a": [1]})}), ValueError, "parameter 'de' must be a table with a column"),
    ("cells metric without cells", dict(metrics=["pearson_edistance"]), ValueError, "has no .cells"),
    ("callable wrong length", dict(metrics=[lambda inp: np.zeros(1 + inp.n_perturbations)]), ValueError, "must return one value per test perturbation"),
    ("centroid without training", dict(metrics=["systema_pearson_delta"], split=Split(train=(), test=("p03", "p04", "p05"))), ValueError, "parameter 'reference' = 'centroid' needs training"),
]


@pytest.mark.parametrize("name,kw,exc,text", CASES, ids=[c[0] for c in CASES])
def test_score_bad_input(case, name, kw, exc, text):
    adata, split, preds, prof = case
    args = dict(preds=preds, adata=adata, split=split, metrics=["pearson_delta"])
    if kw == "other_genes":
        args["preds"] = _other_genes(adata, split, prof)
    elif kw == "missing_pert":
        args["preds"] = _missing_pert(adata, split, prof)
    else:
        args.update(kw)
    with pytest.raises(exc) as err:
        score(args.pop("preds"), args.pop("adata"), args.pop("split"), **args)
    assert text in str(err.value)


REGISTRY_CASES = [
    ("duplicate registration", lambda: sm.register(sm.get("mse")), ValueError, "not yet registered"),
    ("bad needs", lambda: Metric("x", lambda i: i, needs={"genes"}), ValueError, "parameter 'needs' must be a subset"),
    ("bad native target", lambda: Metric("x", lambda i: i, target="hide"), ValueError, "parameter 'target'"),
    ("fn not callable", lambda: Metric("x", 3), ValueError, "parameter 'fn' must be a callable"),
    ("empty name", lambda: Metric("", lambda i: i), ValueError, "parameter 'name'"),
    ("get non-string", lambda: sm.get(3), TypeError, "parameter 'name'"),
    ("bad distance", lambda: sm.cross_distances(np.zeros((2, 2)), np.zeros((2, 2)), "l3"), ValueError, "parameter 'metric'"),
    ("scaled_score metrics differ", lambda: sm.scaled_score({"mse": 1.0}, {"mae": 1.0}), ValueError, "parameter 'baseline_scores'"),
    ("scaled_score statistic", lambda: sm.scaled_score({"mse": 1.0}, {"mse": 1.0}, statistic="max"), ValueError, "parameter 'statistic'"),
    ("scaled_score type", lambda: sm.scaled_score(3, {"mse": 1.0}), TypeError, "parameter 'scores'"),
]


@pytest.mark.parametrize("name,fn,exc,text", REGISTRY_CASES, ids=[c[0] for c in REGISTRY_CASES])
def test_registry_bad_input(name, fn, exc, text):
    with pytest.raises(exc) as err:
        fn()
    assert text in str(err.value)
