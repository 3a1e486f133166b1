"""Scenario files: look-up by name, path, dict and parameter object; clear errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from simpert.calibrate import Scenario, list_scenarios, load_scenario, scenario_dirs

REPO_SIM = Path(__file__).resolve().parents[1] / "simulations"
REQUIRED = ["noise_only", "sparse_strong", "sparse_weak", "systematic_B0", "systematic_B0.5",
            "systematic_B1", "systematic_B2", "knockdown_escape", "few_cells", "var_network"]


def test_required_scenarios_ship():
    names = list_scenarios()
    for n in REQUIRED:
        assert n in names
        assert (REPO_SIM / f"{n}.toml").is_file()


@pytest.mark.parametrize("name", REQUIRED)
def test_every_file_builds_its_simulator_parameters(name):
    sim = pytest.importorskip("simpert.sim")
    sc = load_scenario(name)
    assert sc.name == name and sc.source.endswith(f"{name}.toml")
    raw = tomllib.loads(Path(sc.source).read_text())
    assert sc.params == raw["params"]
    if sc.kind == "screen":
        p = sim.ScreenParams(**sc.params)
        assert p.n_genes <= 1000 and p.n_perturbations <= 40


def test_systematic_sweep_labels():
    assert [load_scenario(f"systematic_B{b}").B for b in ("0", "0.5", "1", "2")] == [0.0, 0.5, 1.0, 2.0]
    sc = load_scenario("systematic_B2")
    assert sc.params["systematic_strength"] == 2.0


def test_path_dict_and_params_object(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[scenario]\nkind = "screen"\ntest_fraction = 0.3\n[params]\nn_genes = 50\n')
    sc = load_scenario(str(f))
    assert sc.name == "mine" and sc.test_fraction == 0.3 and sc.params == {"n_genes": 50}
    assert load_scenario(f).name == "mine"
    d = load_scenario({"name": "flat", "n_genes": 20, "p_effect": 0.1})
    assert d.name == "flat" and d.kind == "screen" and d.params == {"n_genes": 20, "p_effect": 0.1}
    nested = load_scenario({"scenario": {"name": "nest", "labels": {"B": 1}}, "params": {"n_genes": 9}})
    assert nested.B == 1.0
    sim = pytest.importorskip("simpert.sim")
    obj = load_scenario(sim.ScreenParams(n_genes=40, n_perturbations=5, systematic_strength=0.5))
    assert obj.kind == "screen" and obj.B == 0.5 and obj.params_dict()["n_genes"] == 40
    assert load_scenario(sim.NoiseOnlyParams()).kind == "noise_only"


def test_env_var_folder_shadows(tmp_path, monkeypatch):
    (tmp_path / "sparse_strong.toml").write_text('[scenario]\nname = "mine_strong"\n[params]\nn_genes = 7\n')
    (tmp_path / "extra.toml").write_text('[params]\nn_genes = 8\n')
    monkeypatch.setenv("SIMPERT_SCENARIOS", str(tmp_path))
    assert scenario_dirs()[0] == tmp_path
    assert load_scenario("sparse_strong").name == "mine_strong"
    assert "extra" in list_scenarios()


def test_unknown_name_lists_known():
    with pytest.raises(ValueError) as err:
        load_scenario("no_such_scenario")
    msg = str(err.value)
    assert "parameter 'scenario' must be a path to a TOML file or one of the known names" in msg
    assert "sparse_strong" in msg and "'no_such_scenario'" in msg


@pytest.mark.parametrize("bad, exc, match", [
    ("missing/file.toml", ValueError, "parameter 'scenario' must be an existing TOML file"),
    (3.5, TypeError, "parameter 'scenario' must be a scenario name"),
    ({"scenario": {"name": "x", "kind": "bulk"}}, ValueError, "parameter 'kind' must be one of 'screen'"),
    ({"scenario": {"name": "x", "test_fraction": 1.0}}, ValueError,
     r"parameter 'test_fraction' must be a number in \(0, 1\); got 1.0"),
    ({"scenario": {"name": "x", "colour": 1}}, ValueError, "parameter 'scenario' must be a \\[scenario\\] table"),
    ({"scenario": {}, "params": {}, "other": 1}, ValueError, "only \\[scenario\\] and \\[params\\]"),
    ({"scenario": {"name": ""}}, TypeError, "parameter 'name' must be a non-empty string"),
])
def test_bad_scenarios(bad, exc, match):
    with pytest.raises(exc, match=match):
        load_scenario(bad)


def test_bad_toml(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("[params\nn = ")
    with pytest.raises(ValueError, match="must be a valid TOML file"):
        load_scenario(f)


def test_scenario_is_frozen():
    sc = Scenario("x")
    with pytest.raises(Exception):
        sc.name = "y"
