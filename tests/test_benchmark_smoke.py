"""benchmarks/run.py --quick runs end to end and prints its table.

No timing assertions: the speed targets live in the benchmark itself (full sizes), not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.mark.model
@pytest.mark.timeout(300)
def test_quick_benchmark_prints_a_table_with_numbers(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    env = {**os.environ, "AGGREGATOR_BENCH_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--json", str(rows_file)],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
    )
    output = done.stdout
    assert "stage" in output and "wall s" in output and "peak RSS MB" in output, done.stderr
    rows = json.loads(rows_file.read_text())

    # Every stage is reported: measured, or with the reason it could not be.
    assert {"poll", "repoll", "embed", "group", "build"} <= {r["stage"] for r in rows}
    assert {r["stage"] for r in rows} & {"run", "run:first"}
    unmeasured = ("not available", "FAIL")
    for row in rows:
        assert row["wall_s"] is not None or row["result"].startswith(unmeasured), row
        assert row["result"] == "—" or row["result"].startswith(unmeasured), row  # quick: unjudged

    measured = [r for r in rows if r["wall_s"] is not None]
    assert measured, output
    for row in measured:
        assert row["wall_s"] > 0
        assert f"{row['wall_s']:.2f}" in output  # the table shows the figure
