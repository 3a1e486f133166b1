"""Stand-in simulate / split / make / score steps for calibration tests (injected through
``simpert.calibrate.Pipeline``): Gaussian "profiles" with known truth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from simpert._random import as_generator
from simpert.calibrate import Pipeline, Scenario
from simpert.calibrate._stats import ladder_alpha

# --------------------------------------------------------------------------- stand-ins
@dataclass(frozen=True)
class FakeMetric:
    name: str
    fn: Callable
    higher_is_better: bool = True
    best: float | None = None


def _neg_l2(pred, real, truth):
    return -np.sqrt(((pred - real) ** 2).sum(axis=1))


def _neg_l2_truth(pred, real, truth):
    return -np.sqrt(((pred - truth) ** 2).sum(axis=1))


def _corr(pred, real, truth):
    p = pred - pred.mean(axis=1, keepdims=True)
    r = real - real.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (p * r).sum(1) / np.sqrt((p * p).sum(1) * (r * r).sum(1))


def _broken(pred, real, truth):
    raise RuntimeError("this metric always fails")


FAKE_REGISTRY = {
    "neg_l2": FakeMetric("neg_l2", _neg_l2, True, 0.0),
    "corr": FakeMetric("corr", _corr, True, 1.0),
    "neg_l2_truth": FakeMetric("neg_l2_truth", _neg_l2_truth, True, 0.0),
    "broken": FakeMetric("broken", _broken, True, 1.0),
}


def fake_lookup(name):
    if name not in FAKE_REGISTRY:
        raise ValueError(f"unknown metric {name!r}")
    return FAKE_REGISTRY[name]


def fake_simulate(scenario, *, rng):
    p = scenario.params_dict()
    g = as_generator(rng)
    P, G = p.get("n_perturbations", 12), p.get("n_genes", 30)
    effect = p.get("effect_sd", 1.0) * g.normal(size=(P, G)) * (g.random((P, G)) < 0.3)
    sigma = p.get("sigma", 0.5)
    return {"truth": effect, "obs": effect + sigma * g.normal(size=(P, G)), "sigma": sigma}


def fake_split(adata, *, test_fraction, rng):
    P = adata["truth"].shape[0]
    perm = as_generator(rng).permutation(P)
    k = max(1, int(round(test_fraction * P)))
    return {"test": np.sort(perm[:k]), "train": np.sort(perm[k:])}


def fake_make(adata, split, predictors, *, rng):
    g = as_generator(rng)
    truth, obs = adata["truth"][split["test"]], adata["obs"][split["test"]]
    mean = adata["obs"][split["train"]].mean(axis=0)
    out = {}
    for name in predictors:
        a = ladder_alpha(name)
        if a is not None:
            out[name] = a * truth + (1 - a) * mean
        elif name == "oracle":
            out[name] = truth
        elif name == "technical_duplicate":
            out[name] = truth + adata["sigma"] * g.normal(size=truth.shape)
        elif name == "mean":
            out[name] = np.broadcast_to(mean, truth.shape).copy()
        elif name == "shuffled":
            out[name] = truth[g.permutation(truth.shape[0])]
        else:
            out[name] = np.zeros_like(truth)
    return {"pred": out, "real": obs, "truth": truth, "names": [f"p{i}" for i in split["test"]]}


def fake_score(preds, adata, split, *, metrics, **options):
    scale = options.get("scale", 1.0)
    frames = []
    for m in metrics:
        metric = FAKE_REGISTRY[m] if isinstance(m, str) else m
        for pname, pred in preds["pred"].items():
            vals = scale * metric.fn(pred, preds["real"], preds["truth"])
            frames.append(pd.DataFrame({"predictor": pname, "perturbation": preds["names"],
                                        "metric": metric.name if isinstance(m, str) else "x",
                                        "value": vals}))
    return pd.concat(frames, ignore_index=True)


def fake_all():
    return ["neg_l2", "corr"]


PIPE = Pipeline(simulate=fake_simulate, split=fake_split, make=fake_make, score=fake_score,
                lookup=fake_lookup, all_metrics=fake_all)
SCEN = [
    Scenario("easy", params={"effect_sd": 2.0, "sigma": 0.3}),
    Scenario("hard", params={"effect_sd": 0.5, "sigma": 1.0}, labels={"B": 1.0}),
]


