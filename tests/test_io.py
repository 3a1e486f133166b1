"""Atomic output: written whole or not at all, with the usual file mode."""

import os
import stat

import pandas as pd
import pytest

from simpert._io import atomic_path, write_table_atomic, write_text_atomic


def test_written_file_has_umask_mode(tmp_path):
    mask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "a.txt", "hello")
    finally:
        os.umask(mask)
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failure_leaves_target_untouched_and_no_temporaries(tmp_path):
    target = tmp_path / "b.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"]


def test_table_suffixes_and_bad_suffix(tmp_path):
    df = pd.DataFrame({"a": [1, 2]})
    for suffix in (".csv", ".tsv", ".parquet"):
        write_table_atomic(df, tmp_path / f"t{suffix}")
    assert pd.read_csv(tmp_path / "t.csv").equals(df)
    with pytest.raises(ValueError, match="parameter 'path' must end in .parquet, .csv or .tsv; got"):
        write_table_atomic(df, tmp_path / "t.xlsx")
    assert not (tmp_path / "t.xlsx").exists()
