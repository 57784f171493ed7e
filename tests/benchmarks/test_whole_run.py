"""The whole-run benchmark (whole_run.py) runs both peers and reports their ratio and memory."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import whole_run  # noqa: E402


@pytest.mark.skipif(
    not all(importlib.util.find_spec(p) for p in ("pandas", "sklearn")),
    reason="pandas and scikit-learn, the benchmark's peers, are not installed (pip install -e '.[bench]')",
)
def test_a_small_run_reports_both_and_their_ratio(tmp_path: Path) -> None:
    text = whole_run.measure(rows=300, inputs=3, epochs=1, reps=1, folder=tmp_path)
    assert "300 rows x 3 inputs" in text
    for name in ("treegrad", "pandas+sklearn"):
        line = next(line for line in text.splitlines() if line.strip().startswith(name))
        assert re.search(r"peak RSS +\d+\.\d MB", line), line
    assert re.search(r"ratio: treegrad is \d+\.\d\dx pandas", text)
    assert (tmp_path / "m.json").is_file() and (tmp_path / "m.pickle").is_file()


def test_the_table_is_what_init_reads_as_binary(tmp_path: Path) -> None:
    whole_run.make_table(tmp_path / "t.csv", rows=50, inputs=4)
    lines = (tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "x0,x1,x2,x3,label" and len(lines) == 51
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == {"yes", "no"}
