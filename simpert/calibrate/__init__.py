"""simpert.calibrate: does a metric reward what it should?

:func:`calibrate` simulates screens from named scenarios, builds predictors of known
quality (oracle, technical duplicate, a ladder between the mean baseline and the truth,
baselines and reward hackers), scores them with each metric and summarises how well each
metric separates good predictions from bad ones (:class:`CalibrationSummary`).
"""

from ._executors import EXECUTORS, run_tasks
from ._pipeline import Pipeline, planted_controls
from ._power import PowerResult, pilot_differences, power, power_check, sample_sizes, t_test_power
from ._results import VERDICT_RULES, CalibrationResult, CalibrationSummary, MetricInfo
from ._rmetric import RFunction, r_metric
from ._run import LADDER_ALPHAS, STANDARD_PREDICTORS, MetricSpec, calibrate, with_options
from ._scenarios import Scenario, list_scenarios, load_scenario, scenario_dirs
from ._stats import STATISTICS

__all__ = [
    "power",
    "power_check",
    "PowerResult",
    "t_test_power",
    "pilot_differences",
    "sample_sizes",
    "calibrate",
    "CalibrationResult",
    "CalibrationSummary",
    "MetricInfo",
    "MetricSpec",
    "with_options",
    "r_metric",
    "RFunction",
    "Scenario",
    "load_scenario",
    "list_scenarios",
    "scenario_dirs",
    "Pipeline",
    "planted_controls",
    "run_tasks",
    "EXECUTORS",
    "STANDARD_PREDICTORS",
    "LADDER_ALPHAS",
    "STATISTICS",
    "VERDICT_RULES",
]
