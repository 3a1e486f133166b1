"""The MatrixMarket directory format: how a screen travels between simpert and R.

A directory holds

- ``counts.mtx``: the counts as a MatrixMarket coordinate matrix, **genes x observations**
  (the orientation of a Bioconductor ``SummarizedExperiment`` assay);
- ``obs.csv``: one row per observation (cell or pseudobulk sample); first column ``obs_name``;
- ``var.csv``: one row per gene; first column ``gene``;
- the truth, when the screen carries one: ``log2fc.csv``, ``specific_log2fc.csv`` (and any
  other perturbation x gene array; first column ``perturbation``, one column per gene),
  ``perturbations.csv`` (one row per perturbation: ``perturbation``, ``target``, ...),
  ``gene_truth.csv`` (one row per gene: ``gene``, ``shared_log2fc``, ...) and
  ``network.csv`` (gene x gene) for network screens;
- ``meta.json``: the format version, the orientation, the column types of ``obs``/``var``,
  and the rest of ``adata.uns["simpert"]`` (kind, control, version, seed, params).

Only ``counts.mtx`` and ``obs.csv`` are required to read a directory back; a directory written
by R with just those two (and optionally ``var.csv`` and a ``meta.json`` with ``control``) is
accepted.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

from .._io import atomic_dir, check_output


class _LazyModule:
    """A module imported on first attribute access.

    The command line imports this module to register ``convert``; numpy, pandas and scipy
    are loaded only when a directory is read or written, so that start-up stays short.
    """

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        module = importlib.import_module(self._name)
        return getattr(module, attr)


np = _LazyModule("numpy")
pd = _LazyModule("pandas")
sp = _LazyModule("scipy.sparse")
_scipy_io = _LazyModule("scipy.io")

__all__ = ["FORMAT", "FORMAT_VERSION", "write_mtx_dir", "read_mtx_dir", "is_mtx_dir", "jsonable"]

FORMAT = "simpert-mtx"
FORMAT_VERSION = 1
_ORIENTATION = "genes x observations"
_STRING_COLUMNS = ("perturbation", "target", "guide")


def jsonable(obj):
    """Convert numpy scalars/arrays and nested containers into JSON-serialisable values.

    Parameters
    ----------
    obj : object
        Any nesting of dicts, lists, tuples, numpy arrays, numpy scalars and plain values.

    Returns
    -------
    object
        The same structure made of dicts, lists, str, int, float, bool and None.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        value = float(obj)
        return value if np.isfinite(value) else None
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, bytes):
        return obj.decode()
    return str(obj)


def _column_types(df: pd.DataFrame) -> dict:
    types = {}
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            types[col] = {"type": "category", "categories": [str(c) for c in s.cat.categories]}
        elif pd.api.types.is_bool_dtype(s):
            types[col] = {"type": "bool"}
        elif pd.api.types.is_integer_dtype(s):
            types[col] = {"type": "int"}
        elif pd.api.types.is_float_dtype(s):
            types[col] = {"type": "float"}
        else:
            types[col] = {"type": "str"}
    return types


def _apply_types(df: pd.DataFrame, types) -> pd.DataFrame:
    # an empty record may arrive as a JSON list ([]) from writers that cannot tell an empty
    # object from an empty array (R's jsonlite); it means "no typed columns"
    if not isinstance(types, dict):
        if types:
            raise ValueError("meta.json: 'obs_types' and 'var_types' must be objects mapping a "
                             f"column name to its type; got {type(types).__name__}")
        return df
    for col, spec in types.items():
        if col not in df.columns:
            continue
        kind = spec.get("type")
        if kind == "category":
            values = df[col].fillna("").astype(str)
            cats = [str(c) for c in spec.get("categories", [])]
            extra = sorted(set(values) - set(cats))
            df[col] = pd.Categorical(values, categories=cats + extra)
        elif kind == "bool":
            df[col] = df[col].astype(str).str.upper().map({"TRUE": True, "FALSE": False, "1": True, "0": False}).fillna(False).astype(bool)
        elif kind == "int":
            df[col] = pd.to_numeric(df[col]).astype(np.int64)
        elif kind == "float":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(np.float64)
        else:
            df[col] = df[col].fillna("").astype(str)
    return df


def _default_obs_types(obs: pd.DataFrame, control: str) -> dict:
    """Column types for an ``obs.csv`` written without simpert's type record (e.g. by R)."""
    types = {}
    if "perturbation" in obs.columns:
        levels = pd.unique(obs["perturbation"].fillna("").astype(str))
        cats = ([control] if control in set(levels) else []) + sorted(x for x in levels if x != control)
        types["perturbation"] = {"type": "category", "categories": cats}
    if "guide" in obs.columns:
        types["guide"] = {"type": "category", "categories": sorted(pd.unique(obs["guide"].fillna("").astype(str)))}
    if "target" in obs.columns:
        types["target"] = {"type": "str"}
    for col in ("is_control", "escaped"):
        if col in obs.columns:
            types[col] = {"type": "bool"}
    return types


def is_mtx_dir(path) -> bool:
    """Whether ``path`` is a directory holding ``counts.mtx``."""
    path = Path(path)
    return path.is_dir() and (path / "counts.mtx").is_file()


def _is_written_by_simpert(path: Path) -> bool:
    try:
        return json.loads((path / "meta.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def write_mtx_dir(adata, path, *, force: bool = False) -> Path:
    """Write a screen to a MatrixMarket directory (atomically).

    Parameters
    ----------
    adata : AnnData
        Counts in ``layers['counts']`` or ``.X``; ``obs``, ``var`` and ``uns['simpert']``
        as in docs/architecture.md.
    path : str or path-like
        The directory to create. An existing directory is replaced only when it is empty
        or an earlier MatrixMarket output of simpert (otherwise FileExistsError).
    force : bool, default False
        Replace an existing directory whatever it holds.

    Returns
    -------
    Path
        ``path``.
    """
    from simpert._profiles import counts_matrix

    path = Path(path)
    force = force or (path.is_dir() and _is_written_by_simpert(path))
    check_output(path, kind="mtx", directory=True, force=force)
    x = counts_matrix(adata)
    is_sparse = sp.issparse(x)
    mat = sp.coo_matrix(x.T if is_sparse else np.asarray(x).T)
    integer = np.issubdtype(mat.dtype, np.integer) or bool(np.all(np.mod(mat.data, 1) == 0))
    uns = dict(adata.uns.get("simpert", {}))
    truth = dict(uns.pop("truth", {}) or {})
    obs_names = [str(n) for n in adata.obs_names]
    genes = [str(g) for g in adata.var_names]
    with atomic_dir(path, kind="mtx", force=force) as tmp:
        if integer and not np.issubdtype(mat.dtype, np.integer):
            mat = mat.astype(np.int64)
        _scipy_io.mmwrite(tmp / "counts.mtx", mat, field="integer" if integer else "real")
        obs = adata.obs.copy()
        obs.index = pd.Index(obs_names, name="obs_name")
        obs.to_csv(tmp / "obs.csv", index=True)
        var = adata.var.copy()
        var.index = pd.Index(genes, name="gene")
        var.to_csv(tmp / "var.csv", index=True)
        truth_files = _write_truth(truth, tmp, genes)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "orientation": _ORIENTATION,
            "shape": [int(adata.n_vars), int(adata.n_obs)],
            "x": "sparse" if is_sparse else "dense",
            "x_dtype": str(np.dtype(x.dtype)) if integer and np.issubdtype(x.dtype, np.integer) else None,
            "obs_types": _column_types(adata.obs),
            "var_types": _column_types(adata.var),
            "truth_files": truth_files,
            "simpert": jsonable(uns),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, allow_nan=False))
    return path


def _write_truth(truth: dict, tmp: Path, genes: list[str]) -> dict:
    """Write the truth arrays as CSV files; return ``{key: [file, layout]}`` for meta.json."""
    if not truth:
        return {}
    perts = [str(p) for p in np.asarray(truth.get("perturbations", []), dtype=object)]
    t_genes = [str(g) for g in np.asarray(truth.get("genes", genes), dtype=object)]
    n_p, n_g = len(perts), len(t_genes)
    files: dict = {}
    per_pert: dict = {}
    per_gene: dict = {}
    scalars: dict = {}
    for key, value in truth.items():
        if key in ("perturbations", "genes"):
            continue
        arr = np.asarray(value)
        if key == "replicate_log2fc" and arr.ndim == 2 and arr.dtype.kind in "biuf":
            # replicate x gene: a plain matrix, even when there are as many replicates as
            # perturbations (the shape alone would call it perturbation x gene)
            np.savetxt(tmp / f"{key}.csv", arr, delimiter=",", fmt="%.17g")
            files[key] = [f"{key}.csv", "matrix"]
        elif arr.ndim == 2 and arr.shape == (n_p, n_g) and n_p != n_g:
            pd.DataFrame(arr, index=pd.Index(perts, name="perturbation"), columns=t_genes).to_csv(tmp / f"{key}.csv")
            files[key] = [f"{key}.csv", "perturbation x gene"]
        elif arr.ndim == 2 and arr.shape == (n_g, n_g):
            pd.DataFrame(arr, index=pd.Index(t_genes, name="gene"), columns=t_genes).to_csv(tmp / f"{key}.csv")
            files[key] = [f"{key}.csv", "gene x gene"]
        elif arr.ndim == 2 and arr.shape == (n_p, n_g):
            pd.DataFrame(arr, index=pd.Index(perts, name="perturbation"), columns=t_genes).to_csv(tmp / f"{key}.csv")
            files[key] = [f"{key}.csv", "perturbation x gene"]
        elif arr.ndim == 1 and arr.shape[0] == n_p and n_p != n_g:
            per_pert[key] = arr
        elif arr.ndim == 1 and arr.shape[0] == n_g:
            per_gene[key] = arr
        elif arr.ndim == 1 and arr.shape[0] == n_p:
            per_pert[key] = arr
        elif arr.ndim == 2 and arr.dtype.kind in "biuf":
            np.savetxt(tmp / f"{key}.csv", arr, delimiter=",", fmt="%.17g")
            files[key] = [f"{key}.csv", "matrix"]
        elif arr.ndim == 0:
            scalars[key] = jsonable(arr.item())
        else:
            scalars[key] = jsonable(arr)
    if per_pert or n_p:
        df = pd.DataFrame({k: v for k, v in per_pert.items()}, index=pd.Index(perts, name="perturbation"))
        df.to_csv(tmp / "perturbations.csv")
        for key in per_pert:
            files[key] = ["perturbations.csv", "column"]
        files["perturbations"] = ["perturbations.csv", "index"]
    if per_gene:
        df = pd.DataFrame(per_gene, index=pd.Index(t_genes, name="gene"))
        df.to_csv(tmp / "gene_truth.csv")
        for key in per_gene:
            files[key] = ["gene_truth.csv", "column"]
    if scalars:
        files["_scalars"] = scalars
    return files


def _read_truth(path: Path, files: dict) -> dict:
    truth: dict = {}
    cache: dict = {}

    def table(name):
        if name not in cache:
            cache[name] = pd.read_csv(path / name, index_col=0, keep_default_na=False, na_values=["", "NA", "NaN"], float_precision="round_trip")
        return cache[name]

    for key, spec in files.items():
        if key == "_scalars":
            truth.update({k: np.asarray(v) if isinstance(v, list) else v for k, v in spec.items()})
            continue
        name, layout = spec
        if layout == "matrix":
            truth[key] = np.atleast_2d(np.loadtxt(path / name, delimiter=",", dtype=np.float64, ndmin=2))
            continue
        df = table(name)
        if layout == "perturbation x gene":
            truth[key] = df.to_numpy(dtype=np.float64)
            truth.setdefault("perturbations", np.asarray(df.index.astype(str), dtype=object))
            truth.setdefault("genes", np.asarray(df.columns.astype(str), dtype=object))
        elif layout == "gene x gene":
            truth[key] = df.to_numpy(dtype=np.float64)
        elif layout == "index":
            truth["perturbations"] = np.asarray(df.index.astype(str), dtype=object)
        else:
            col = df[key]
            if col.dtype == object:
                truth[key] = np.asarray(col.fillna("").astype(str), dtype=object)
            else:
                truth[key] = col.to_numpy()
    return truth


def read_mtx_dir(path):
    """Read a MatrixMarket directory (see the module docstring) into an AnnData.

    Parameters
    ----------
    path : str or path-like
        A directory holding at least ``counts.mtx`` and ``obs.csv``.

    Returns
    -------
    AnnData
        Counts in ``.X`` (CSR for sparse data, dense int64 for pseudobulk), ``obs``,
        ``var`` and, when present, ``uns['simpert']`` with the truth.

    Raises
    ------
    FileNotFoundError
        When ``counts.mtx`` or ``obs.csv`` is missing.
    ValueError
        When the files disagree in shape.
    """
    import anndata as ad

    path = Path(path)
    for name in ("counts.mtx", "obs.csv"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"parameter 'input' must be a simpert MatrixMarket directory with {name}; "
                                    f"{str(path / name)!r} does not exist")
    meta = {}
    if (path / "meta.json").is_file():
        meta = json.loads((path / "meta.json").read_text())
    uns = dict(meta.get("simpert") or {})
    control = str(meta.get("control", uns.get("control", "control")))
    uns.setdefault("control", control)

    mat = _scipy_io.mmread(path / "counts.mtx")
    mat = sp.csr_matrix(mat).T.tocsr() if sp.issparse(mat) else sp.csr_matrix(np.asarray(mat).T)
    if np.issubdtype(mat.dtype, np.floating) and mat.nnz and np.all(np.mod(mat.data, 1) == 0):
        mat = mat.astype(np.int64)
    obs = pd.read_csv(path / "obs.csv", index_col=0, keep_default_na=False, na_values=["NA", "NaN"], float_precision="round_trip")
    obs.index = obs.index.astype(str)
    obs.index.name = None
    if mat.shape[0] != obs.shape[0]:
        raise ValueError(f"parameter 'input' must have one obs.csv row per column of counts.mtx; "
                         f"got {obs.shape[0]} rows for {mat.shape[0]} columns")
    if (path / "var.csv").is_file():
        var = pd.read_csv(path / "var.csv", index_col=0, keep_default_na=False, na_values=["NA", "NaN"], float_precision="round_trip")
        var.index = var.index.astype(str)
    else:
        var = pd.DataFrame(index=[f"g{i:05d}" for i in range(mat.shape[1])])
    var.index.name = None
    if mat.shape[1] != var.shape[0]:
        raise ValueError(f"parameter 'input' must have one var.csv row per row of counts.mtx; "
                         f"got {var.shape[0]} rows for {mat.shape[1]} rows")
    obs_types = meta.get("obs_types") or _default_obs_types(obs, control)
    obs = _apply_types(obs, obs_types)
    if "is_control" not in obs.columns and "perturbation" in obs.columns:
        obs["is_control"] = (obs["perturbation"].astype(str) == control).to_numpy()
    var = _apply_types(var, meta.get("var_types", {}))
    if meta.get("x_dtype"):
        mat = mat.astype(np.dtype(meta["x_dtype"]))
    x = mat.toarray() if meta.get("x", "sparse") == "dense" else mat
    adata = ad.AnnData(X=x, obs=obs, var=var)
    truth_files = meta.get("truth_files") or {}
    if truth_files and not isinstance(truth_files, dict):
        raise ValueError("meta.json: 'truth_files' must be an object mapping a truth key to "
                         f"[file, layout]; got {type(truth_files).__name__}")
    if truth_files:
        uns["truth"] = _read_truth(path, truth_files)
    adata.uns["simpert"] = uns
    return adata


def register(app) -> None:
    """Add the ``convert`` command (.h5ad <-> MatrixMarket directory) to ``app``."""
    import typer

    from ._common import CLIError, user_errors

    @app.command("convert")
    @user_errors
    def convert_cmd(
        input: str = typer.Argument(..., help="A screen: .h5ad file or MatrixMarket directory."),
        output: str = typer.Argument(..., help="Where to write it: a path ending in .h5ad, or a "
                                     "directory (MatrixMarket)."),
        force: bool = typer.Option(False, "--force", help="Replace an existing output directory "
                                   "even if simpert did not write it."),
    ):
        """Convert a screen between an .h5ad file and a MatrixMarket directory (what R reads)."""
        from .._io import check_output, write_h5ad_atomic
        from ._inputs import read_screen

        out = Path(output)
        to_h5ad = out.suffix.lower() == ".h5ad"
        if not to_h5ad and out.suffix:
            raise CLIError(f"argument 'OUTPUT' must end in .h5ad or have no suffix (a directory); got {output!r}")
        if to_h5ad:
            check_output(out, name="argument 'OUTPUT'")
        else:
            check_output(out, kind="mtx", directory=True, name="argument 'OUTPUT'",
                         force=force or (out.is_dir() and _is_written_by_simpert(out)))
        adata = read_screen(input)
        if to_h5ad:
            write_h5ad_atomic(adata, out)
        else:
            write_mtx_dir(adata, out, force=force)
