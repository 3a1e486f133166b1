"""Build step: ship the scenario files of ``simulations/`` inside the package.

The source checkout keeps the scenarios in ``simulations/`` at the repository root (the
tests, the paper figures and ``SIMPERT_SCENARIOS`` read them there). A wheel has no
repository root, so ``build_py`` copies ``simulations/*.toml`` into ``simpert/scenarios/``
of the build; :func:`simpert.calibrate.scenario_dirs` looks there after ``simulations/``.
Everything else is declared in ``pyproject.toml``.
"""

from pathlib import Path
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class build_py_with_scenarios(build_py):
    def run(self):
        super().run()
        src = HERE / "simulations"
        files = sorted(src.glob("*.toml"))
        if not files:
            raise SystemExit(f"no scenario files in {src}: the package would ship without them")
        dest = Path(self.build_lib) / "simpert" / "scenarios"
        dest.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, dest / f.name)


setup(cmdclass={"build_py": build_py_with_scenarios})
