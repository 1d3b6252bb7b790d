"""deft bench sim --quick writes the benchmark JSON (the numbers themselves are not asserted)."""

import json

from typer.testing import CliRunner

from app.cli import build_cli


def test_quick_bench_writes_json_with_every_measure(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(build_cli(), ["bench", "sim", "--quick", "--backend", "cpu", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [r["n"] for r in data["sizes"]] == [5, 9]
    assert [r["horizon"] for r in data["horizons"]] == [4, 8]
    for row in data["sizes"] + data["horizons"]:
        assert row["forward_s_per_step"] > 0 and row["forward_backward_s_per_step"] >= row["forward_s_per_step"]
        assert row["checkpoint_bytes"] > 0
        assert row["arch"] in ("x64", "arm64")  # where the kernels ran, as asked
