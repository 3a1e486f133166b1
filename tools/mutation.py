"""Mutation testing: does the test suite notice a realistic one-line slip?

Usage::

    python tools/mutation.py [--package de metrics sim calibrate] [--max 40] [--seed 0]
                             [--report docs/mutation.md] [--list]

Each mutant changes one expression of one module of ``simpert/<package>/`` with one of the
operators below, in a private copy of the source tree (the working tree is never touched),
then runs that package's test files there (``-x``, with a time limit of three times the
unmutated run plus 60 s). A mutant is *killed* when a test fails or the run times out.
Mutants are drawn at random (``--seed``) from every mutation point of the package, at most
``--max`` per package. The report lists every surviving mutant; ``tools/mutation_notes.toml``
says for each known survivor why it is equivalent or harmless, and the report quotes it.

Operators (the slips a developer makes):

- ``compare``: ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``
- ``arith``: ``+`` <-> ``-``, ``*`` <-> ``/``, ``**`` -> ``*``
- ``number``: an integer ``k`` -> ``k + 1``; a float ``x`` -> ``x / 2`` (0.0 -> 1.0)
- ``clamp``: ``np.maximum(a, b)``, ``np.minimum(a, b)``, ``np.clip(a, ...)`` -> ``a``
- ``ddof``: ``ddof=1`` <-> ``ddof=0``
- ``bool``: ``True`` <-> ``False``
- ``negate``: ``-x`` -> ``x``

Lines marked ``# pragma: no mutate``, docstrings, ``__all__`` and the text of error
messages are not mutated.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Test files run for each package's mutants.
TESTS = {
    "de": ["tests/test_de_parity.py", "tests/test_de_native.py", "tests/test_de_native_edges.py",
           "tests/test_de_badinput.py", "tests/test_de_ash.py", "tests/test_de_impact.py",
           "tests/test_de_wilcoxon.py", "tests/test_de_covariates.py", "tests/test_faults.py",
           "tests/test_de_ash_prior.py", "tests/test_de_r_fallbacks.py", "tests/test_de_ash_start.py",
           "tests/test_de_covariates_count_table.py", "tests/test_anchors.py",
           "tests/test_de_samples.py", "tests/test_de_wilcoxon_stored.py", "tests/test_de_backends.py"],
    "metrics": ["tests/test_metrics_definitions.py", "tests/test_metrics_celleval.py",
                "tests/test_metrics_fast_paths.py", "tests/test_metrics_properties.py",
                "tests/test_metrics_bad_input.py", "tests/test_metrics_vcc2026.py", "tests/test_metrics_sources.py",
                "tests/test_metrics_input_types.py", "tests/test_evaluate.py", "tests/test_pins.py",
                "tests/test_faults.py", "tests/test_metrics_group_ranks.py", "tests/test_metrics_best_values.py",
                "tests/test_evaluate_stored.py", "tests/test_anchors.py",
                "tests/test_metrics_blockwise.py", "tests/test_metrics_paths.py", "tests/test_metrics_ranges.py"],
    "sim": ["tests/test_sim_screen.py", "tests/test_sim_validation.py", "tests/test_sim_network.py",
            "tests/test_sim_noise_only.py", "tests/test_sim_estimate.py", "tests/test_sim_properties.py",
            "tests/test_pins.py", "tests/test_faults.py", "tests/test_sim_compare.py", "tests/test_sim_plant.py",
            "tests/test_sim_chunked.py", "tests/test_sim_realism.py", "tests/test_sim_iterate.py",
            "tests/test_sim_estimate_cell_counts.py", "tests/test_anchors.py", "tests/test_sim_memory.py", "tests/test_sim_ranges.py",
            "tests/test_sim_estimate_reference.py"],
    "calibrate": ["tests/test_calibrate_stats.py", "tests/test_calibrate_run.py",
                  "tests/test_calibrate_scenarios.py", "tests/test_calibrate_panel.py", "tests/test_power.py",
                  "tests/test_pins.py", "tests/test_faults.py", "tests/test_calibrate_verdict.py",
                  "tests/test_calibrate_power_formulas.py", "tests/test_anchors.py",
                  "tests/test_calibrate_power_edges.py", "tests/test_calibrate_rmetric.py"],
}

_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq}
_ARITH = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult}
_CLAMPS = {"maximum", "minimum", "clip"}


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One change: replace ``lines[line-1][col:end_col]`` (single line) by ``new``."""

    path: str
    line: int
    col: int
    end_col: int
    operator: str
    old: str
    new: str

    @property
    def key(self) -> str:
        return f"{self.path}:{self.line}:{self.operator}:{self.old} -> {self.new}"


def _skip_lines(tree: ast.AST, lines: list[str]) -> set[int]:
    skip = {i + 1 for i, text in enumerate(lines) if "pragma: no mutate" in text}
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            skip.update(range(body[0].lineno, body[0].end_lineno + 1))
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            skip.update(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.Raise):
            skip.update(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.JoinedStr):
            skip.update(range(node.lineno, node.end_lineno + 1))
    return skip


def _segment(lines, node) -> str | None:
    if node.lineno != node.end_lineno:
        return None
    return lines[node.lineno - 1][node.col_offset:node.end_col_offset]


def mutants_of(path: Path) -> list[Mutant]:
    """Every mutation point of one module."""
    text = path.read_text()
    lines = text.splitlines()
    tree = ast.parse(text)
    skip = _skip_lines(tree, lines)
    rel = str(path.relative_to(ROOT))
    out = []

    def add(node, op, new_node=None, new_text=None):
        old = _segment(lines, node)
        if old is None or node.lineno in skip:
            return
        new = new_text if new_text is not None else f"({ast.unparse(new_node)})"
        if new.strip("()") == old:
            return
        out.append(Mutant(rel, node.lineno, node.col_offset, node.end_col_offset, op, old, new))

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            m = ast.Compare(left=node.left, ops=[_CMP[type(node.ops[0])]()], comparators=node.comparators)
            add(node, "compare", m)
        elif isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            add(node, "arith", ast.BinOp(left=node.left, op=_ARITH[type(node.op)](), right=node.right))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            v = node.value
            new = repr(v + 1) if isinstance(v, int) else (repr(v / 2) if v != 0 else "1.0")
            add(node, "number", new_text=new)
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            add(node, "bool", new_text=repr(not node.value))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
                and not isinstance(node.operand, ast.Constant):
            add(node, "negate", new_text=f"({ast.unparse(node.operand)})")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _CLAMPS and node.args:
            add(node, "clamp", new_text=f"({ast.unparse(node.args[0])})")
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "ddof" and isinstance(kw.value, ast.Constant) and kw.value.value in (0, 1):
                    new_call = ast.Call(func=node.func, args=node.args, keywords=[
                        ast.keyword(arg=k.arg, value=ast.Constant(1 - k.value.value)) if k is kw else k
                        for k in node.keywords])
                    add(node, "ddof", new_call)
    return out


def _apply(copy_root: Path, m: Mutant) -> str:
    target = copy_root / m.path
    original = target.read_text()
    lines = original.splitlines(keepends=True)
    line = lines[m.line - 1]
    assert line[m.col:m.end_col] == m.old, (m, line)
    lines[m.line - 1] = line[:m.col] + m.new + line[m.end_col:]
    target.write_text("".join(lines))
    return original


def _run_tests(copy_root: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    env = dict(os.environ, PYTHONPATH=str(copy_root), PYTHONDONTWRITEBYTECODE="1")
    env.pop("SIMPERT_REQUIRE_R", None)
    tests = [*tests, "-m", "not slow"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                               "--no-header", *tests], cwd=copy_root, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t0
    status = {0: "survived", 1: "killed"}.get(proc.returncode, f"error {proc.returncode}")
    if proc.returncode not in (0, 1):
        status = "killed"  # a collection or import error caused by the mutant
    return status, time.perf_counter() - t0


def _copy_tree(dest: Path) -> None:
    for name in ("simpert", "tests", "simulations", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)


def _notes() -> dict:
    path = ROOT / "tools" / "mutation_notes.toml"
    if not path.is_file():
        return {}
    return tomllib.loads(path.read_text()).get("survivors", {})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", nargs="+", default=list(TESTS), choices=list(TESTS))
    ap.add_argument("--max", type=int, default=40, help="mutants per package (random sample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", default=str(ROOT / "docs" / "mutation.md"))
    ap.add_argument("--list", action="store_true", help="list the mutation points and exit")
    ap.add_argument("--only", nargs="+", metavar="KEY",
                    help="run these mutants (keys as the report prints them, e.g. a survivor of an "
                         "earlier run, to check the test written for it) instead of a random sample")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    plan = {}
    for pkg in args.package:
        points = [m for f in sorted((ROOT / "simpert" / pkg).glob("*.py")) for m in mutants_of(f)]
        if args.only:
            chosen = [m for m in points if m.key in set(args.only)]
            if not chosen:
                continue
            plan[pkg] = (len(points), chosen)
            continue
        plan[pkg] = (len(points), sorted(rng.sample(points, min(args.max, len(points))), key=lambda m: m.key))
    if args.only:
        found = {m.key for _, chosen in plan.values() for m in chosen}
        missing = [k for k in args.only if k not in found]
        if missing:
            ap.error(f"--only: no such mutation point (the line may have moved): {missing}")
    if args.list:
        for pkg, (n, chosen) in plan.items():
            print(f"{pkg}: {n} mutation points, {len(chosen)} drawn")
            for m in chosen:
                print("  ", m.key)
        return 0
    notes = _notes()
    results = {}
    with tempfile.TemporaryDirectory(prefix="simpert-mutation-") as tmp:
        copy_root = Path(tmp)
        _copy_tree(copy_root)
        for pkg, (n_points, chosen) in plan.items():
            status, base = _run_tests(copy_root, TESTS[pkg], timeout=3600)
            if status != "survived":
                print(f"{pkg}: the unmutated tests do not pass ({status}); skipped", flush=True)
                continue
            limit = 3 * base + 60
            rows = []
            for i, m in enumerate(chosen, 1):
                original = _apply(copy_root, m)
                try:
                    status, secs = _run_tests(copy_root, TESTS[pkg], timeout=limit)
                finally:
                    (copy_root / m.path).write_text(original)
                rows.append((m, status, secs))
                print(f"[{pkg} {i}/{len(chosen)}] {status:8s} {secs:6.1f}s  {m.key}", flush=True)
            results[pkg] = (n_points, base, rows)
    lines = ["# Mutation testing", "",
             "Made by `make mutation` (`python tools/mutation.py`); see that script for the operators.",
             (f"The mutants named with --only: {len(args.only)}." if args.only else
              f"Seed {args.seed}, at most {args.max} mutants per package."), "",
             "| package | mutation points | mutants run | killed | survived | score |",
             "|---|---:|---:|---:|---:|---:|"]
    summary = []
    for pkg, (n_points, base, rows) in results.items():
        killed = sum(s in ("killed", "timeout") for _, s, _ in rows)
        score = killed / len(rows) if rows else float("nan")
        summary.append(f"{pkg}={score:.3f}")
        lines.append(f"| {pkg} | {n_points} | {len(rows)} | {killed} | {len(rows) - killed} | {score:.1%} |")
    lines += ["", "## Surviving mutants", ""]
    for pkg, (_, _, rows) in results.items():
        for m, s, _ in rows:
            if s == "survived":
                why = notes.get(m.key, "not yet explained")
                lines.append(f"- `{m.key}`: {why}")
    text = "\n".join(lines) + "\n"
    report = Path(args.report)
    report.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from simpert._io import write_text_atomic

    write_text_atomic(report, text)
    print(text)
    print("RESULT " + " ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
