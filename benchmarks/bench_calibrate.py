"""Benchmark of the calibration harness.

1. The standard panel: every built-in metric x every scenario file x 10 replicates with
   the default executor (joblib) on the available cores; goal: within 10 minutes on 2 cores.
2. Parallel speed-up: the same (smaller) panel run serially, with joblib on 2 workers, on a
   2-worker Dask LocalCluster started by ``calibrate`` (start included) and on a running one
   (start timed apart); the tables must be byte-identical; goal: >= 1.7x.

Usage::

    python benchmarks/bench_calibrate.py            # full panel + speed-up
    python benchmarks/bench_calibrate.py --quick    # small panel (< 1 minute of work)
    python benchmarks/bench_calibrate.py --skip-panel

Ends with one line ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from simpert.calibrate import calibrate, list_scenarios  # noqa: E402

BUDGET_S = 600.0


def _timed(**kw):
    t0 = time.perf_counter()
    res = calibrate(**kw)
    return res, time.perf_counter() - t0


def _same(a, b) -> bool:
    return a.table.equals(b.table) and a.table["value"].to_numpy().tobytes() == b.table["value"].to_numpy().tobytes()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small panel, for CI (under a minute)")
    ap.add_argument("--skip-panel", action="store_true", help="only the speed-up comparison")
    ap.add_argument("--replicates", type=int, default=10, help="replicates of the full panel")
    ap.add_argument("--jobs", type=int, default=2, help="workers of the parallel executors")
    ap.add_argument("--scenarios", default="all", help="comma-separated scenarios of the full panel")
    ap.add_argument("--skip-speedup", action="store_true", help="only the panel")
    args = ap.parse_args(argv)

    from simpert import metrics as M

    all_metrics = [n for n, m in M.registry.items() if m.higher_is_better is not None]
    profile_metrics = [n for n in all_metrics if not (M.registry[n].needs & {"cells", "de"})
                       and n != "pereggrn_cell_label_accuracy"]
    scenarios = list_scenarios()
    cores = len(os.sched_getaffinity(0))
    print(f"cores available: {cores}; load average: {os.getloadavg()[0]:.1f}")
    print(f"{len(all_metrics)} metrics, {len(scenarios)} scenarios: {', '.join(scenarios)}")
    out = {}

    if args.quick:
        panel_metrics, panel_scen, panel_rep = profile_metrics[:10], ["sparse_strong", "noise_only"], 2
    else:
        panel_metrics, panel_rep = "all", args.replicates
        panel_scen = "all" if args.scenarios == "all" else args.scenarios.split(",")
    if not args.skip_panel:
        res, wall = _timed(metrics=panel_metrics, scenarios=panel_scen, n_replicates=panel_rep, rng=0,
                           executor="joblib", n_jobs=args.jobs)
        n_tasks = len(res.scenarios) * res.n_replicates
        print(f"panel: {len(res.metrics)} metrics x {len(res.scenarios)} scenarios x {res.n_replicates} "
              f"replicates ({n_tasks} tasks, {len(res.table):,} scores, {len(res.errors)} failed cells) "
              f"in {wall:.1f} s with joblib x {args.jobs}")
        if len(res.errors):
            print(res.errors.to_string(max_colwidth=90))
        out.update(panel_s=round(wall, 1), panel_tasks=n_tasks, panel_metrics=len(res.metrics),
                   panel_budget_ratio=round(wall / BUDGET_S, 3))
        # per-metric cost is not separable inside a task; report the per-task mean instead
        cpu = float(res.timings["cpu_s"].sum())
        full_tasks = len(scenarios) * 10
        print(f"task CPU time: {cpu:.1f} s in all, {cpu / n_tasks:.2f} s per task; the full panel "
              f"({full_tasks} tasks) needs about {cpu / n_tasks * full_tasks / args.jobs:.0f} s on {args.jobs} "
              "otherwise idle cores")
        print(res.timings.groupby("scenario")["cpu_s"].mean().round(2).to_string())
        out["panel_cpu_s_per_task"] = round(cpu / n_tasks, 2)
        out["panel_estimate_idle_s"] = round(cpu / n_tasks * full_tasks / args.jobs, 1)

    if args.skip_speedup:
        print("RESULT " + " ".join(f"{k}={v}" for k, v in out.items()))
        return 0
    # speed-up: the same smaller panel three ways
    if args.quick:
        sp_metrics, sp_scen, sp_rep = profile_metrics[:10], ["sparse_strong"], 4
    else:
        sp_metrics, sp_scen, sp_rep = profile_metrics, list_scenarios(), 4
    kw = dict(metrics=sp_metrics, scenarios=sp_scen, n_replicates=sp_rep, rng=1)
    serial, t_serial = _timed(executor="serial", **kw)
    joblib_res, t_joblib = _timed(executor="joblib", n_jobs=args.jobs, **kw)
    dask_res, t_dask = _timed(executor="dask", n_jobs=args.jobs, **kw)  # starts and stops its own cluster
    # a running cluster, as a Dask user has one: start it (timed apart), warm it up, then time the work
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        t_start = time.perf_counter() - t0
        calibrate(metrics=sp_metrics[:2], scenarios=sp_scen[:1], n_replicates=2, rng=2, executor="dask", client=client)
        warm_res, t_warm = _timed(executor="dask", client=client, **kw)
    ident = _same(serial, joblib_res) and _same(serial, dask_res) and _same(serial, warm_res)
    print(f"speed-up panel: {len(serial.metrics)} metrics x {len(serial.scenarios)} scenarios x {sp_rep} replicates")
    print(f"  serial {t_serial:.1f} s | joblib x{args.jobs} {t_joblib:.1f} s ({t_serial / t_joblib:.2f}x) | "
          f"dask LocalCluster x{args.jobs} {t_dask:.1f} s ({t_serial / t_dask:.2f}x, cluster start included) | "
          f"running dask cluster {t_warm:.1f} s ({t_serial / t_warm:.2f}x; its start took {t_start:.1f} s)")
    print(f"  tables byte-identical across executors: {ident}")
    out.update(serial_s=round(t_serial, 1), joblib_s=round(t_joblib, 1), dask_s=round(t_dask, 1),
               dask_running_s=round(t_warm, 1), dask_start_s=round(t_start, 1),
               speedup_joblib=round(t_serial / t_joblib, 2), speedup_dask=round(t_serial / t_dask, 2),
               speedup_dask_running=round(t_serial / t_warm, 2),
               identical=ident, load=round(os.getloadavg()[0], 1))
    print("RESULT " + " ".join(f"{k}={v}" for k, v in out.items()))
    return 0 if ident else 1


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::RuntimeWarning")
    raise SystemExit(main())
