"""Calibration scenarios: named simulation settings stored as TOML files.

A scenario file holds a ``[scenario]`` table (``name``, ``kind``, ``description``,
``test_fraction``, optional ``labels``) and a ``[params]`` table passed to the simulator
of that kind (``simpert.sim.screen`` with ``ScreenParams`` for ``kind = "screen"``,
``simpert.sim.noise_only`` for ``"noise_only"``, ``simpert.sim.var_network`` for
``"var_network"``, ``simpert.sim.plant`` for ``"planted"``: known effects planted into
control cells, see :func:`simpert.calibrate.planted_controls`)::

    [scenario]
    name = "sparse_strong"
    kind = "screen"
    description = "Few genes respond, strongly"
    test_fraction = 0.5
    labels = { B = 0.0 }

    [params]
    n_genes = 500
    n_perturbations = 30

Look-up order of :func:`load_scenario` for a string: an existing path; then a file
``<name>.toml`` in each folder of the environment variable ``SIMPERT_SCENARIOS``
(``os.pathsep``-separated); then the ``simulations/`` folder of the source tree; then the
``scenarios/`` folder inside the installed package (a wheel's copy of ``simulations/``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping

from .._validation import Interval, check, fail

__all__ = ["Scenario", "load_scenario", "list_scenarios", "scenario_dirs", "KINDS"]

#: Simulator kinds a scenario may name.
KINDS = ("screen", "noise_only", "var_network", "planted")


@dataclass(frozen=True)
class Scenario:
    """A named simulation setting.

    Parameters
    ----------
    name : str
        Short name used in tables and figures.
    kind : {"screen", "noise_only", "var_network", "planted"}
        Which simulator of :mod:`simpert.sim` draws the data (``"planted"``:
        :func:`simpert.sim.plant` on the control cells named by ``params["controls"]``).
    params : dict or parameter object
        Keyword arguments of the simulator (or a ready parameter object such as
        ``simpert.sim.ScreenParams``).
    test_fraction : float, default 0.5
        Fraction of perturbations held out by :func:`simpert.predict.split`.
    description : str, default ""
        One line saying what the scenario stresses.
    labels : dict, default {}
        Numbers that describe the scenario in figures (e.g. ``{"B": 0.5}`` for the
        strength of the systematic response).
    source : str or None
        File the scenario was read from.
    output : {"cells", "pseudobulk"}, default "cells"
        For ``kind = "screen"``: draw cells, or samples summed per perturbation x replicate
        without ever holding the cell matrix (``simpert.sim.screen(output="pseudobulk")``),
        so that a replicate may be a genome-scale screen of millions of cells (memory: the
        samples and a few numbers per cell). Metrics that need cells score NaN on
        pseudobulk replicates and are reported as such.
    """

    name: str
    kind: str = "screen"
    params: Any = field(default_factory=dict)
    test_fraction: float = 0.5
    description: str = ""
    labels: dict = field(default_factory=dict)
    source: str | None = None
    output: str = "cells"

    def __post_init__(self):
        check("name", self.name, _NonEmptyStr())
        if self.kind not in KINDS:
            fail("kind", "one of " + ", ".join(repr(k) for k in KINDS), self.kind)
        check("test_fraction", self.test_fraction, Interval(0, 1, closed="neither"))
        if not isinstance(self.labels, Mapping):
            fail("labels", "a table of numbers", self.labels, exc=TypeError)
        if self.output not in ("cells", "pseudobulk"):
            fail("output", "'cells' or 'pseudobulk'", self.output)
        if self.output != "cells" and self.kind != "screen":
            fail("output", "'cells' for a scenario of kind " + repr(self.kind) + " ('pseudobulk' is for kind "
                 "'screen')", self.output)

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str | None = None, name: str | None = None) -> "Scenario":
        """Build a scenario from the dict of a TOML file (or an equivalent dict).

        Parameters
        ----------
        data : mapping
            Either ``{"scenario": {...}, "params": {...}}`` or a flat dict whose keys
            ``name``, ``kind``, ``test_fraction``, ``description``, ``labels`` and ``output`` describe
            the scenario and whose other keys are simulator parameters.
        source : str, optional
            Where the dict came from.
        name : str, optional
            Name used when the dict does not give one.

        Returns
        -------
        Scenario
        """
        if not isinstance(data, Mapping):
            fail("scenario", "a mapping", data, exc=TypeError)
        meta_keys = {"name", "kind", "test_fraction", "description", "labels", "output"}
        if "scenario" in data or "params" in data:
            unknown = set(data) - {"scenario", "params"}
            if unknown:
                fail("scenario", "a table with only [scenario] and [params] sections",
                     sorted(unknown))
            meta = dict(data.get("scenario", {}))
            params = dict(data.get("params", {}))
            bad = set(meta) - meta_keys
            if bad:
                fail("scenario", "a [scenario] table with keys among " + ", ".join(sorted(meta_keys)),
                     sorted(bad))
        else:
            meta = {k: v for k, v in data.items() if k in meta_keys}
            params = {k: v for k, v in data.items() if k not in meta_keys}
        meta.setdefault("name", name or "custom")
        return cls(params=params, source=source, **meta)

    @property
    def B(self) -> float | None:
        """Strength of the shared systematic response, if the scenario states it."""
        if "B" in self.labels:
            return float(self.labels["B"])
        p = self.params_dict()
        for key in ("systematic_strength", "B", "shared_strength", "systematic"):
            if key in p and isinstance(p[key], (int, float)) and not isinstance(p[key], bool):
                return float(p[key])
        return None

    def params_dict(self) -> dict:
        """The simulator parameters as a plain dict."""
        if isinstance(self.params, Mapping):
            return dict(self.params)
        if is_dataclass(self.params):
            return {f.name: getattr(self.params, f.name) for f in fields(self.params)}
        return dict(vars(self.params))


class _NonEmptyStr:
    exc = TypeError

    def ok(self, value):
        return isinstance(value, str) and value != ""

    def describe(self):
        return "a non-empty string"


def scenario_dirs() -> list[Path]:
    """Folders searched for scenario files, in look-up order.

    Returns
    -------
    list of Path
        The folders named in ``SIMPERT_SCENARIOS`` (``os.pathsep``-separated), then the
        ``simulations/`` folder at the root of the source tree, then ``simpert/scenarios/``
        (the copy of ``simulations/`` an installed wheel carries).
    """
    dirs = []
    env = os.environ.get("SIMPERT_SCENARIOS", "")
    for part in env.split(os.pathsep):
        if part.strip():
            dirs.append(Path(part).expanduser())
    dirs.append(Path(__file__).resolve().parents[2] / "simulations")
    dirs.append(Path(__file__).resolve().parents[1] / "scenarios")  # the copy a wheel ships
    return dirs


def list_scenarios() -> list[str]:
    """Names of the scenario files that :func:`load_scenario` can find by name.

    Returns
    -------
    list of str
        Sorted, without duplicates (an earlier folder shadows a later one).
    """
    names = set()
    for d in scenario_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.toml"))
    return sorted(names)


def _read_toml(path: Path) -> Scenario:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"parameter 'scenario' must be a valid TOML file; {path} does not parse: {err}") from None
    return Scenario.from_dict(data, source=str(path), name=path.stem)


def load_scenario(scenario) -> Scenario:
    """Return a :class:`Scenario` from a name, a path, a dict or a parameter object.

    Parameters
    ----------
    scenario : str, path, dict, Scenario or simulator parameter object
        A scenario name (see :func:`list_scenarios`), a path to a TOML file, a dict in the
        TOML layout (or flat), a :class:`Scenario`, or a parameter object of
        :mod:`simpert.sim` (e.g. ``ScreenParams``; its kind is taken from the class name).

    Returns
    -------
    Scenario

    Raises
    ------
    ValueError
        When a name is not found; the message lists the known names.
    """
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, Mapping):
        return Scenario.from_dict(scenario)
    if isinstance(scenario, (str, os.PathLike)):
        text = os.fspath(scenario)
        path = Path(text).expanduser()
        if path.is_file():
            return _read_toml(path)
        if text.endswith(".toml") or os.sep in text:
            fail("scenario", "an existing TOML file or a known scenario name", text)
        for d in scenario_dirs():
            candidate = d / f"{text}.toml"
            if candidate.is_file():
                return _read_toml(candidate)
        known = list_scenarios()
        fail("scenario", "a path to a TOML file or one of the known names ("
             + ", ".join(known) + ")", text)
    cls_name = type(scenario).__name__.lower()
    if "params" in cls_name:
        kind = "screen"
        if "noise" in cls_name:
            kind = "noise_only"
        elif "var" in cls_name or "network" in cls_name:
            kind = "var_network"
        return Scenario(name=type(scenario).__name__, kind=kind, params=scenario)
    fail("scenario", "a scenario name, a path, a dict, a Scenario or a simulator parameter object",
         scenario, exc=TypeError)
    return None  # unreachable
