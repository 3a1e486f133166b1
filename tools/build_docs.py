"""Write the generated pages of the documentation site into docs/source (``make docs``).

Generated (and ignored by git), each from the project's own sources:

- ``api/``: one page per subpackage and, through autosummary, one per public name
  (every name in each subpackage's ``__all__``), rendered by numpydoc;
- ``vignettes/``: the jupytext vignettes (executed by myst-nb when Sphinx reads them) and
  the R Markdown vignettes rendered to Markdown by ``rmarkdown::render``;
- ``gallery/``: every paper figure in ``paper_figures/out/`` with its caption;
- ``metric/``: one page per registered metric from the conformance record
  (``docs/metrics.md``) and the registry, with the metric's calibration card;
- ``which_metric.md``: the verdicts of a calibration run on the standard scenario panel;
- ``r/``: the R package's reference pages (``R CMD Rdconv --type=html`` of ``r/man/*.Rd``).

The calibration run behind the cards and the verdicts is small (the scenario files shrunk
as ``make figures FAST=1`` shrinks them, two replicates) and cached in
``docs/_build/cache/`` under a hash of the package's sources.

Usage::

    python tools/build_docs.py [--source docs/source] [--replicates 2]
"""

from __future__ import annotations

import argparse
import hashlib
import html
import importlib
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

SUBPACKAGES = {
    "sim": "Simulators",
    "de": "Differential expression",
    "predict": "Predictors and the split",
    "metrics": "Metrics",
    "calibrate": "Calibration",
    "theory": "Theory",
    "pl": "Plots",
}
CALIBRATION_SEED = 20260
GENERATED = ("api", "vignettes", "gallery", "metric", "r", "which_metric.md")


def _log(msg: str) -> None:
    print(f"[build_docs] {msg}", flush=True)


def _rst_escape(text: str) -> str:
    return re.sub(r"([\\`*_|<>\[\]])", r"\\\1", text)


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_|<>\[\]{}#$])", r"\\\1", text)


def _title(text: str, ch: str = "=") -> str:
    return f"{text}\n{ch * len(text)}\n"


# ---------------------------------------------------------------------------------------
# API reference


def write_api(src: Path) -> None:
    out = src / "api"
    out.mkdir(parents=True)
    lines = [_title("API reference"), "",
             "Every public name of each subpackage (its ``__all__``), documented from its docstring.", "",
             ".. toctree::", "   :maxdepth: 1", ""]
    for sub in SUBPACKAGES:
        lines.append(f"   {sub}")
    (out / "index.rst").write_text("\n".join(lines) + "\n")
    for sub, label in SUBPACKAGES.items():
        mod = importlib.import_module(f"simpert.{sub}")
        names = list(getattr(mod, "__all__", []))
        page = [_title(f"simpert.{sub}: {label}"), "", f".. automodule:: simpert.{sub}", "   :no-members:",
                "   :no-index:", "", f".. currentmodule:: simpert.{sub}", "", ".. autosummary::",
                "   :toctree: generated", "   :nosignatures:", ""]
        page += [f"   {n}" for n in names]
        (out / f"{sub}.rst").write_text("\n".join(page) + "\n")
    _log(f"api: {sum(len(importlib.import_module('simpert.' + s).__all__) for s in SUBPACKAGES)} public names")


# ---------------------------------------------------------------------------------------
# Vignettes


def _r_env() -> dict:
    env = dict(os.environ)
    venv_bin = ROOT / ".venv" / "bin"
    if venv_bin.is_dir():
        env["PATH"] = os.pathsep.join([str(venv_bin), env.get("PATH", "")])
    if (ROOT / ".rlib").is_dir():
        env.setdefault("R_LIBS_USER", str(ROOT / ".rlib"))
    return env


def _r_hash(rmd: Path) -> str:
    h = hashlib.sha256()
    files = [rmd] + sorted(p for p in (ROOT / "r").rglob("*") if p.is_file()) + sorted(
        (ROOT / "simpert").rglob("*.py")) + sorted((ROOT / "simulations").glob("*.toml")) + [Path(__file__)]
    for p in files:
        h.update(p.relative_to(ROOT).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def render_rmd_cached(rmd: Path, out: Path, name: str, cache_root: Path) -> tuple[Path, bool]:
    """``render_rmd``, reusing an earlier rendering of the same sources."""
    cache = cache_root / f"rmd-{name}-{_r_hash(rmd)}"
    if not (cache / f"{name}.md").is_file():
        for old in cache_root.glob(f"rmd-{name}-*"):
            shutil.rmtree(old)
        tmp_out = cache.with_name(cache.name + ".tmp")
        shutil.rmtree(tmp_out, ignore_errors=True)
        tmp_out.mkdir(parents=True)
        render_rmd(rmd, tmp_out, name)
        tmp_out.replace(cache)
        hit = False
    else:
        hit = True
    shutil.copy2(cache / f"{name}.md", out / f"{name}.md")
    if (cache / f"{name}_files").is_dir():
        shutil.copytree(cache / f"{name}_files", out / f"{name}_files", dirs_exist_ok=True)
    return out / f"{name}.md", hit


def render_rmd(rmd: Path, out: Path, name: str) -> Path:
    """Render an R Markdown vignette to GitHub Markdown (figures next to it)."""
    tmp = out / f"_{name}_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    staged = tmp / f"{name}.Rmd"
    shutil.copy2(rmd, staged)
    # images a chunk includes from R's session tempdir (knitr::include_graphics) are copied
    # next to the page before the session ends and removes them
    code = (f'md <- rmarkdown::render("{staged}", output_format = rmarkdown::md_document(variant = "gfm", '
            f'preserve_yaml = FALSE), output_dir = "{out}", intermediates_dir = "{tmp}", quiet = TRUE); '
            f'txt <- readLines(md); d <- file.path("{out}", "{name}_files", "included"); '
            f'dir.create(d, recursive = TRUE, showWarnings = FALSE); '
            f'for (p in unique(unlist(regmatches(txt, gregexpr("/[^\\" )]+[.](png|jpg|svg)", txt))))) '
            f'if (file.exists(p) && !startsWith(p, "{out}")) {{ file.copy(p, file.path(d, basename(p))); '
            f'txt <- gsub(p, file.path(d, basename(p)), txt, fixed = TRUE) }}; writeLines(txt, md)')
    res = subprocess.run(["Rscript", "-e", code], cwd=tmp, env=_r_env(), capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"rendering {rmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    md = out / f"{name}.md"
    text = md.read_text().replace(f"{out}/", "")
    # raw <img> tags are not copied by Sphinx: make them Markdown images
    text = re.sub(r'<img src="([^"]+)"[^>]*/?>', r"![](\1)", text)
    text = text.replace("![](", f"![{name} figure](")
    # the vignette's title lives in its YAML header: make it the page title
    head = rmd.read_text().split("---")
    title = None
    if len(head) > 2:
        m = re.search(r'^title:\s*"?(.+?)"?\s*$', head[1], flags=re.M)
        title = m.group(1) if m else None
    if title and not text.lstrip().startswith("# "):
        text = f"# {title}\n\n" + text
    # one page title: lower every later level-1 heading by one level
    lines, seen = [], False
    fence = False
    for ln in text.splitlines():
        if ln.startswith("```"):
            fence = not fence
        if not fence and re.match(r"^#{1,5} ", ln):
            if ln.startswith("# "):
                if seen:
                    ln = "#" + ln
                seen = True
        lines.append(ln)
    md.write_text("\n".join(lines) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    return md


def write_vignettes(src: Path, *, with_r: bool = True, cache_root: Path | None = None) -> None:
    from vignettes.render import python_vignettes, r_vignettes

    out = src / "vignettes"
    out.mkdir(parents=True)
    entries = []
    for p in python_vignettes():
        shutil.copy2(p, out / p.name)
        entries.append(p.stem)
    r_entries = []
    if with_r:
        rmds = [(p, p.stem) for p in r_vignettes()] + [(ROOT / "r" / "vignettes" / "simpert.Rmd", "r_package_intro")]
        for rmd, name in rmds:
            if rmd.is_file():
                t0 = time.time()
                _, hit = render_rmd_cached(rmd, out, name, cache_root or ROOT / "docs" / "_build" / "cache")
                r_entries.append(name)
                _log(f"vignette {rmd.relative_to(ROOT)} " + ("cached" if hit else
                                                            f"rendered in {time.time() - t0:.0f} s"))
    lines = ["# Vignettes", "",
             "The Python vignettes are the jupytext files of `vignettes/`, executed when the site is built; "
             "the R vignettes are rendered by `rmarkdown::render` (the R package in `r/` drives the "
             "command line).", "", "```{toctree}", ":maxdepth: 1", ""]
    lines += entries + r_entries + ["```", ""]
    (out / "index.md").write_text("\n".join(lines))


# ---------------------------------------------------------------------------------------
# Figure gallery


def write_gallery(src: Path) -> None:
    fig_dir = ROOT / "paper_figures" / "out"
    pngs = sorted(fig_dir.glob("*.png"), key=lambda p: [int(t) if t.isdigit() else t
                                                         for t in re.split(r"(\d+)", p.stem)])
    if not pngs:
        raise SystemExit("no figures in paper_figures/out: run `make figures FAST=1` first")
    out = src / "gallery"
    out.mkdir(parents=True)
    lines = [_title("Figure gallery"), "",
             "Every paper figure as ``make figures`` writes it into ``paper_figures/out/`` (PNG, PDF and "
             "the caption), from simulated data. Each figure is a script in ``paper_figures/``.", ""]
    for png in pngs:
        shutil.copy2(png, out / png.name)
        cap_file = png.with_suffix(".txt")
        caption = cap_file.read_text().strip() if cap_file.is_file() else ""
        paras = [p.strip() for p in re.split(r"\n\s*\n", caption) if p.strip()]
        first = paras[0].splitlines()[0] if paras else png.stem
        lines += [_title(first if len(first) < 120 else png.stem, "-"), "",
                  f".. figure:: {png.name}", f"   :alt: {png.stem}", "   :width: 100%", "",
                  f"   ``paper_figures/{png.stem}.py``", ""]
        body = caption
        if paras and first == paras[0].splitlines()[0]:
            body = caption[len(first):].strip()
        for para in re.split(r"\n\s*\n", body):
            para = " ".join(para.split())
            if para:
                lines += [_rst_escape(para), ""]
        if png.with_suffix(".pdf").is_file():
            shutil.copy2(png.with_suffix(".pdf"), out / png.with_suffix(".pdf").name)
            lines += [f"PDF: :download:`{png.stem}.pdf <{png.stem}.pdf>`", ""]
    (out / "index.rst").write_text("\n".join(lines) + "\n")
    _log(f"gallery: {len(pngs)} figures")


# ---------------------------------------------------------------------------------------
# Calibration (cached) behind the metric cards and the verdicts


def _source_hash(n_replicates: int) -> str:
    h = hashlib.sha256(f"replicates={n_replicates};seed={CALIBRATION_SEED};cards=110dpi".encode())
    for p in sorted((ROOT / "simpert").rglob("*.py")) + sorted((ROOT / "simulations").glob("*.toml")) + [
            ROOT / "paper_figures" / "fig4_calibration_heatmap.py"]:
        h.update(p.relative_to(ROOT).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def calibration(n_replicates: int, cache_root: Path):
    """The standard panel (fig4's metrics and shrunk scenario files), cached by source hash."""
    key = _source_hash(n_replicates)
    path = cache_root / f"calibration-{key}.pkl"
    if path.is_file():
        _log(f"calibration: cached ({path.name})")
        with open(path, "rb") as fh:
            return pickle.load(fh)
    from paper_figures import fig4_calibration_heatmap as fig4
    from simpert import calibrate as cb

    names = fig4._metric_names()
    scenarios = fig4._scenarios(True)
    t0 = time.time()
    res = cb.calibrate(names, scenarios, n_replicates=n_replicates, rng=CALIBRATION_SEED, executor="serial")
    _log(f"calibration: {len(names)} metrics x {len(scenarios)} scenarios x {n_replicates} replicates "
         f"in {time.time() - t0:.0f} s")
    cache_root.mkdir(parents=True, exist_ok=True)
    for old in cache_root.glob("calibration-*.pkl"):
        old.unlink()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(res, fh)
    tmp.replace(path)
    return res


# ---------------------------------------------------------------------------------------
# Metric pages from the conformance record


def _split_row(row: str) -> list[str]:
    """Cells of a Markdown table row; a | inside a code span stays in its cell."""
    inner = row.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    cells, cur, code = [], "", False
    for ch in inner:
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
    cells.append(cur.strip())
    return cells


def _row_names(cell: str) -> list[str]:
    """Metric names a definition cell lists: `a`, `_b` (suffix of the first), `c`."""
    toks = re.findall(r"`([^`]+)`", cell)
    names = []
    for t in toks:
        if t.startswith("_") and names:
            base = names[0]
            stem = base.rsplit("_", 1)[0]
            # discrimination_score_l1, _l2 -> discrimination_score_l2; overlap_at_50, _100 -> overlap_at_100
            names.append(stem + t)
        else:
            names.append(t)
    return names


def parse_record(path: Path) -> dict:
    """Sections of the conformance record: per source, its text, options, parity and rows."""
    text = path.read_text()
    rec = text.split("## Conformance record", 1)[1]
    sources = {}
    # "Sources read" table
    versions = {}
    for ln in rec.splitlines():
        if ln.startswith("| ") and not ln.startswith("| source") and not ln.startswith("|---"):
            cells = _split_row(ln)
            if len(cells) >= 3:
                versions[cells[0]] = (cells[1], cells[2])
    sections = re.split(r"^### ", rec, flags=re.M)[1:]
    for sec in sections:
        head, _, body = sec.partition("\n")
        m = re.search(r"\(source `([^`]+)`\)", head)
        if not m:
            continue
        src = m.group(1)
        rows = {}
        for ln in body.splitlines():
            if ln.startswith("| ") and not ln.startswith("| metric") and not ln.startswith("|---"):
                cells = _split_row(ln)
                if len(cells) >= 2:
                    for n in _row_names(cells[0]):
                        rows.setdefault(n, (cells[0], cells[1]))
        paras = [p for p in re.split(r"\n\s*\n", body.strip()) if not p.startswith("|")]
        options = []
        for para in paras:
            m_opt = re.search(r"(Options|Source defaults)", para)
            if m_opt:
                part = para[m_opt.start():]
                part = part.split(" Parity:", 1)[0].split("\nParity:", 1)[0]
                options.append(part.strip())
        parity = []
        for i, para in enumerate(paras):
            pos = para.find("Parity")
            if pos >= 0:
                parity = [para[pos:]] + paras[i + 1:]
                break
        sources[src] = {"heading": head.strip(), "rows": rows, "options": options, "parity": parity,
                        "anchor": _anchor(head.strip()), "body": body}
    # the 2026 challenge suite (source cell-eval2) is recorded in its own section above
    suite = text.split("## Conformance record", 1)[0]
    if "cell-eval2" in sources and "## The 2026 challenge suite" in suite:
        suite = suite.split("## The 2026 challenge suite", 1)[1]
        subs = {h.partition("\n")[0].strip(): h.partition("\n")[2] for h in re.split(r"^### ", suite, flags=re.M)[1:]}
        cs = sources["cell-eval2"]
        cs["body"] = cs["body"] + "\n\n" + subs.get("Definitions", "")
        for head, sub in subs.items():
            if head.startswith("Measured parity"):
                cs["parity"] = [f"{head}:"] + [p for p in re.split(r"\n\s*\n", sub.strip()) if not p.startswith("|")]
                cs["parity_anchor"] = _anchor(head)
        cs["options"] = [p for p in re.split(r"\n\s*\n", suite.split("### Definitions", 1)[0].strip())
                         if p.startswith(("Source", "Both sides"))]
    return {"sources": sources, "versions": versions}


def _definition_text(sec: dict, name: str) -> str | None:
    """A paragraph or bullet of the section that starts with the metric's name."""
    m = re.search(r"(?:^|\n)(?:- )?`" + re.escape(name) + r"`(?:, `[^`]+`)*: (.+?)(?=\n- `|\n\s*\n|\Z)",
                  sec.get("body", ""), flags=re.S)
    return " ".join(m.group(1).split()) if m else None


def _anchor(heading: str) -> str:
    # myst's heading anchors (GitHub style)
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def _source_key(source: str, record: dict) -> str | None:
    if source in record["sources"]:
        return source
    for k in record["sources"]:
        if k.lower() == str(source).lower():
            return k
    return None


def _version_row(source_key: str, record: dict):
    head = record["sources"][source_key]["heading"]
    for name, v in record["versions"].items():
        if name.lower() == source_key.lower():
            return name, v
    for name, v in record["versions"].items():
        if name.lower() in head.lower():
            return name, v
    return None


def _mentions(par: str, name: str) -> bool:
    return re.search(r"`" + re.escape(name) + r"`", par) is not None or re.search(
        r"(?<![\w])" + re.escape(name) + r"(?![\w])", par) is not None


def write_metrics(src: Path, cal, card_cache: Path | None = None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from simpert import metrics as sm
    from simpert import pl

    record = parse_record(ROOT / "docs" / "metrics.md")
    reg = sm.list_metrics()
    summ = cal.summary() if cal is not None else None
    carded = set(summ.metrics) if summ is not None else set()
    out = src / "metric"
    out.mkdir(parents=True)
    verdicts = {}
    index = ["# Metrics", "",
             "One page per registered metric: its definition and source as the "
             "[conformance record](../conformance.md) gives them, its options, the parity measured "
             "against the source, and its calibration card. "
             "[Which metric should I use?](../which_metric.md) collects the verdicts.", "",
             "| metric | source | verdict | description |", "|---|---|---|---|"]
    names = list(reg.index)
    for name in names:
        row = reg.loc[name]
        source = str(row["source"])
        key = _source_key(source, record)
        sec = record["sources"].get(key) if key else None
        lines = [f"# `{name}`", "", _md_escape(str(row["description"])), ""]
        lines += ["## Definition", ""]
        if sec and name in sec["rows"]:
            names_cell, definition = sec["rows"][name]
            lines += [f"{definition}", "", f"(Row {names_cell} of the conformance record.)", ""]
        elif sec and _definition_text(sec, name):
            lines += [_definition_text(sec, name), ""]
        else:
            lines += [_md_escape(str(row["description"])) + " (see the conformance record's section on "
                      f"its source).", ""]
        lines += ["## Source and version", ""]
        if key:
            vr = _version_row(key, record)
            lines += [f"Source: **{_md_escape(key)}**; conformance record: "
                      f"[{sec['heading']}](../conformance.md#{sec['anchor']})."]
            if vr:
                lines += ["", f"Version read: {vr[1][0]}; files: {vr[1][1]}."]
            lines += [""]
        else:
            lines += [f"Source: **{_md_escape(source)}**.", ""]
        lines += ["## Options", "", "| field | value |", "|---|---|"]
        for field in ("higher_is_better", "best", "needs", "target", "reference", "per_set", "uses_weights",
                      "weights"):
            val = row[field]
            lines.append(f"| {field} | `{val}` |")
        lines.append("")
        if sec and sec["options"]:
            for para in sec["options"]:
                lines += [para, ""]
        lines += ["## Measured parity", ""]
        if sec and sec["parity"]:
            hits = [p for p in sec["parity"] if _mentions(p, name)]
            for para in hits or sec["parity"]:
                lines += [para, ""]
            if hits and len(hits) < len(sec["parity"]):
                lines += [f"The paragraphs above mention `{name}`; the whole record of its source is in "
                          f"[the conformance record](../conformance.md#{sec['anchor']}).", ""]
        else:
            lines += ["No parity record: see the conformance record.", ""]
        lines += ["## Calibration card", ""]
        verdict = ""
        if name in carded:
            cached = card_cache / f"{name}.png" if card_cache else None
            if cached is not None and cached.is_file():
                shutil.copy2(cached, out / f"{name}.png")
            else:
                fig = pl.calibration_card(cal, name)
                fig.savefig(out / f"{name}.png", dpi=110)
                plt.close(fig)
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(out / f"{name}.png", cached)
            verdict = summ.verdict(name)
            verdicts[name] = verdict
            lines += [f"![calibration card of {name}]({name}.png)", "",
                      f"Verdict: {_md_escape(verdict)}", "",
                      "From the documentation's calibration run (the scenario files shrunk to 150 genes and "
                      f"16 perturbations, {cal.n_replicates} replicates); `make figures` runs the full "
                      "panel for figure 4.", ""]
        else:
            reason = ("it describes the data and scores no prediction" if row["higher_is_better"] is None or
                      (isinstance(row["higher_is_better"], float) and np.isnan(row["higher_is_better"]))
                      else "it needs single cells or an expensive fit, which the documentation's "
                           "calibration run leaves out (as figure 4 does)")
            lines += [f"No card: {reason}. `simpert calibrate --metric {name}` draws one.", ""]
        (out / f"{name}.md").write_text("\n".join(lines))
        grade = verdict.split(": ", 1)[1].split(" ", 1)[0] if verdict else "no card"
        index.append(f"| [`{name}`]({name}.md) | {_md_escape(source)} | {grade} | "
                     f"{_md_escape(str(row['description']))} |")
    index += ["", "```{toctree}", ":hidden:", ""] + names + ["```", ""]
    (out / "index.md").write_text("\n".join(index))
    _log(f"metric pages: {len(names)} ({len(verdicts)} with a calibration card)")
    return verdicts


def write_which_metric(src: Path, cal, verdicts: dict) -> None:
    import numpy as np
    import pandas as pd

    from simpert import metrics as sm

    summ = cal.summary()
    reg = sm.list_metrics()
    signal = [s for s in summ.scenarios if s != "noise_only"]

    def med(stat, cols):
        t = summ.stat(stat)
        cols = [c for c in cols if c in t.columns]
        return t[cols].median(axis=1, skipna=True) if cols else pd.Series(np.nan, index=t.index)

    tab = pd.DataFrame({
        "tau": med("tau", signal),
        "auroc": med("auroc", signal),
        "drf": med("drf_mean", signal),
        "null": med("null_level", ["noise_only"]),
    })
    tab["grade"] = [verdicts[m].split(": ", 1)[1].split(" ", 1)[0] for m in tab.index]
    tab["reasons"] = [verdicts[m].split(" - ", 1)[1] if " - " in verdicts[m] else "" for m in tab.index]
    order = {"GOOD": 0, "MIXED": 1, "POOR": 2}
    tab["_o"] = tab["grade"].map(order)
    tab["_s"] = tab[["tau", "drf"]].mean(axis=1, skipna=True) + (2 * tab["auroc"] - 1)
    tab = tab.sort_values(["_o", "_s"], ascending=[True, False])

    def f(v):
        return "n/a" if not np.isfinite(v) else f"{v:.2f}"

    counts = tab["grade"].value_counts()
    lines = [
        "# Which metric should I use?", "",
        "Generated from a calibration run of simpert itself: every built-in metric that scores "
        "profiles (and the DE metrics figure 4 keeps) on the scenario files of `simulations/` "
        f"({', '.join(f'`{s}`' for s in summ.scenarios)}), each shrunk to 150 genes and 16 "
        f"perturbations, {cal.n_replicates} replicates; predictors of known quality (oracle, technical "
        "duplicate, a ladder from the mean baseline to the truth, baselines and reward hackers) are "
        "scored and `simpert.calibrate` judges each metric.", "",
        "## What a verdict means", "",
        "Each verdict applies five checks to the median over scenarios of each statistic; "
        "signal scenarios are all but `noise_only`:", "",
        "1. **ladder tau >= 0.8** on signal scenarios: moving the prediction from the mean baseline "
        "towards the truth improves the score;",
        "2. **AUROC >= 0.8** of the technical duplicate against the mean baseline, across perturbations: "
        "the metric tells a good prediction from the baseline perturbation by perturbation;",
        "3. **dynamic range fraction > 0.2** of the technical duplicate against the mean baseline: "
        "the duplicate is clearly better than the baseline on the metric's own scale;",
        "4. **null level < 0.5** on `noise_only`: with nothing to predict, the mean baseline earns "
        "less than half of what an independent replicate earns;",
        "5. **target gain < half the specificity**: predicting only the directly targeted gene does "
        "not earn most of the score.", "",
        "- **GOOD**: every check that can be judged passes, and at least three are judged. Use it.",
        "- **MIXED**: one or two checks fail. Usable with care: the reasons say which flaw to "
        "guard against (for example, report it next to the mean baseline's score).",
        "- **POOR**: three or more checks fail, or none passes. The metric rewards the wrong "
        "thing on these data: do not rank models by it alone.", "",
        "A check whose statistic is undefined (no significant genes, a NaN score) is listed as "
        "not judged. The run is small, so a metric near a threshold may change grade in a larger run; "
        "figure 4 of the [gallery](gallery/index.rst) shows the full panel, and "
        "`simpert calibrate --metric NAME` calibrates one metric (or your own) on any scenario.", "",
        f"This run: {int(counts.get('GOOD', 0))} GOOD, {int(counts.get('MIXED', 0))} MIXED, "
        f"{int(counts.get('POOR', 0))} POOR.", "",
        "## The verdicts", "",
        "Medians over the signal scenarios (tau, AUROC, DRF) and the null level on `noise_only`; "
        "rows ordered by grade, then by tau + DRF + (2 AUROC - 1).", "",
        "| metric | source | grade | tau | AUROC | DRF | null level |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, r in tab.iterrows():
        lines.append(f"| [`{m}`](metric/{m}.md) | {_md_escape(str(reg.loc[m, 'source']) if m in reg.index else '')} | "
                     f"**{r['grade']}** | {f(r['tau'])} | {f(r['auroc'])} | {f(r['drf'])} | {f(r['null'])} |")
    lines += ["", "## The reasons", "",
              "The checks each metric fails (the ones it passes when it fails none), then the checks that "
              "could not be judged, as `CalibrationSummary.verdict` states them.", ""]
    for m, r in tab.iterrows():
        lines.append(f"- [`{m}`](metric/{m}.md), **{r['grade']}**: {_md_escape(r['reasons']) or 'every check passes'}")
    lines += ["", "## In short", ""]
    good = [m for m in tab.index if tab.loc[m, "grade"] == "GOOD"]
    if good:
        lines += ["Metrics graded GOOD here: " + ", ".join(f"[`{m}`](metric/{m}.md)" for m in good) + ".", ""]
    else:
        lines += ["No metric passes every check in this run; prefer the MIXED ones at the top of the "
                  "table and read their reasons.", ""]
    (src / "which_metric.md").write_text("\n".join(lines))
    _log(f"which_metric: {len(tab)} metrics")


# ---------------------------------------------------------------------------------------
# R reference pages


def write_r_reference(src: Path) -> None:
    out = src / "r"
    out.mkdir(parents=True)
    rds = sorted((ROOT / "r" / "man").glob("*.Rd"))
    topics = {}
    for rd in rds:
        text = rd.read_text()
        for a in re.findall(r"\\alias\{([^}]+)\}", text):
            topics[a] = rd.stem
    entries = []
    for rd in rds:
        res = subprocess.run(["R", "CMD", "Rdconv", "--type=html", str(rd)], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"Rdconv failed on {rd}:\n{res.stderr}")
        page = res.stdout
        body = re.search(r"<body[^>]*>(.*)</body>", page, flags=re.S)
        body = body.group(1) if body else page
        body = re.sub(r'<div class="container">', "<div>", body)
        # the page's own title becomes the Sphinx title; drop R's header table
        title_m = re.search(r"<h2>(.*?)</h2>", body, flags=re.S)
        title = re.sub(r"<[^>]+>", "", title_m.group(1)).strip() if title_m else rd.stem
        title = html.unescape(" ".join(title.split()))
        body = re.sub(r"<table[^>]*>\s*<tr>\s*<td>[^<]*</td>\s*<td[^>]*>R Documentation</td>\s*</tr>\s*</table>",
                      "", body, flags=re.S)
        if title_m:
            body = body.replace(title_m.group(0), "", 1)

        def fix(m):
            href = m.group(1)
            target = href.rsplit("/", 1)[-1]
            stem = target[:-5] if target.endswith(".html") else target
            if ("../simpert/" in href or "/" not in href) and stem in topics:
                return f'<a href="{topics[stem]}.html">'
            if stem in topics and "simpert" in href:
                return f'<a href="{topics[stem]}.html">'
            return "<a>"   # a topic of another package: no page here

        body = re.sub(r'<a href="([^"#][^"]*)">', fix, body)
        body = re.sub(r'<a href="([^"]*\.html)">', fix, body)
        body = body.replace("<h3>", "<h3 class=\"rd-section\">")
        rst = [_title(rd.stem), "", f"**{_rst_escape(title)}** (``r/man/{rd.name}``)", "", ".. raw:: html", ""]
        rst += ["   " + ln for ln in body.strip().splitlines()]
        (out / f"{rd.stem}.rst").write_text("\n".join(rst) + "\n")
        entries.append((rd.stem, title))
    idx = [_title("R package reference"), "",
           "The help pages of the R package in ``r/`` (``R CMD Rdconv --type=html`` of ``r/man/*.Rd``). "
           "The package drives the ``simpert`` command line and exchanges files with it; see the R "
           "vignettes in :doc:`../vignettes/index`.", ""]
    for stem, title in entries:
        idx.append(f"- :doc:`{stem}`: {_rst_escape(title)}")
    idx += ["", ".. toctree::", "   :hidden:", ""] + [f"   {s}" for s, _ in entries]
    (out / "index.rst").write_text("\n".join(idx) + "\n")
    _log(f"R reference: {len(entries)} pages")


# ---------------------------------------------------------------------------------------


def sync(staging: Path, final: Path) -> int:
    """Make the generated parts of ``final`` equal to ``staging``, touching changed files only."""
    n = 0
    for g in GENERATED:
        a, b = staging / g, final / g
        if a.is_file():
            if not b.is_file() or b.read_bytes() != a.read_bytes():
                shutil.copy2(a, b)
                n += 1
            continue
        if b.is_file():
            b.unlink()
        want = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} if a.is_dir() else set()
        have = {p.relative_to(b) for p in b.rglob("*") if p.is_file()} if b.is_dir() else set()
        # autosummary writes its stubs into api/generated: they belong to Sphinx, not to us
        have = {p for p in have if not (g == "api" and p.parts[0] == "generated")}
        if g == "api" and (have != want or any((b / r).read_bytes() != (a / r).read_bytes() for r in want)):
            shutil.rmtree(b / "generated", ignore_errors=True)   # autosummary re-makes its stubs
        for rel in sorted(have - want):
            (b / rel).unlink()
            n += 1
        for rel in sorted(want):
            dst = b / rel
            if not dst.is_file() or dst.read_bytes() != (a / rel).read_bytes():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(a / rel, dst)
                n += 1
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default=str(ROOT / "docs" / "source"))
    ap.add_argument("--replicates", type=int, default=2)
    ap.add_argument("--no-r", action="store_true", help="skip the R vignettes (for a quick look)")
    args = ap.parse_args(argv)
    final = Path(args.source)
    t0 = time.time()
    src = ROOT / "docs" / "_build" / "staging"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    write_api(src)
    write_gallery(src)
    write_r_reference(src)
    cache = ROOT / "docs" / "_build" / "cache"
    cal = calibration(args.replicates, cache)
    key = _source_hash(args.replicates)
    for old in cache.glob("cards-*"):
        if old.name != f"cards-{key}":
            shutil.rmtree(old)
    verdicts = write_metrics(src, cal, cache / f"cards-{key}")
    write_which_metric(src, cal, verdicts)
    write_vignettes(src, with_r=not args.no_r, cache_root=cache)
    changed = sync(src, final)
    shutil.rmtree(src, ignore_errors=True)
    _log(f"done in {time.time() - t0:.0f} s ({changed} files written or removed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
