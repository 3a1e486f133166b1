"""tools/mutation.py: its operators, and the notes file it quotes."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import mutation  # noqa: E402

KEY = re.compile(r"^simpert/(de|metrics|sim|calibrate)/[A-Za-z0-9_]+\.py:\d+:"
                 r"(compare|arith|number|clamp|ddof|bool|negate):.+ -> .+$")


def test_notes_parse_with_one_well_formed_key_per_mutant():
    """A repeated key makes the harness fail at start (TOML refuses it); every key has the
    form the harness prints; every note says why (equivalent, harmless or killed since)."""
    text = (ROOT / "tools" / "mutation_notes.toml").read_text()
    notes = tomllib.loads(text)["survivors"]
    assert len(notes) >= 100
    for key, why in notes.items():
        assert KEY.match(key), key
        assert re.match(r"^(equivalent|near-equivalent|harmless|killed since)", why), (key, why)


def test_operators_on_a_small_module(tmp_path, monkeypatch):
    src = tmp_path / "simpert" / "sim" / "_m.py"
    src.parent.mkdir(parents=True)
    src.write_text('"""Doc 1 < 2."""\n\n'
                   "def f(a, b):\n"
                   '    """Also not mutated: 3 + 4."""\n'
                   "    x = a < b\n"
                   "    y = a * 2.0 - b\n"
                   "    z = np.maximum(a, 0)\n"
                   "    w = np.std(a, ddof=1)\n"
                   "    raise ValueError(f'{a + 1}')\n"
                   "    q = -a  # pragma: no mutate\n"
                   "    return True, -b\n")
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    keys = {f"{m.operator}:{m.old} -> {m.new}" for m in mutation.mutants_of(src)}
    assert keys == {
        "compare:a < b -> (a <= b)",
        "arith:a * 2.0 -> (a / 2.0)",
        "arith:a * 2.0 - b -> (a * 2.0 + b)",
        "number:2.0 -> 1.0",
        "clamp:np.maximum(a, 0) -> (a)",
        "number:0 -> 1",
        "ddof:np.std(a, ddof=1) -> (np.std(a, ddof=0))",
        "number:1 -> 2",
        "bool:True -> False",
        "negate:-b -> (b)",
    }


@pytest.mark.parametrize("pkg", ["de", "metrics", "sim", "calibrate"])
def test_every_package_test_file_exists(pkg):
    for t in mutation.TESTS[pkg]:
        assert (ROOT / t).is_file(), t
