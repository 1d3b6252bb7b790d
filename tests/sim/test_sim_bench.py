"""deft bench sim --quick and deft bench volumetric write the benchmark JSON (the numbers themselves are not asserted)."""

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


def test_volumetric_bench_runs_a_case_in_the_precision_asked(tmp_path):
    """Each case runs in its own process, in the floating point asked for (the research
    codes it is compared with run in f32), timed as often as asked; an unknown precision is
    refused by name."""
    out = tmp_path / "vol.json"
    args = ["bench", "volumetric", "--case", "mpm_scaling_20k", "--quick", "--precision", "f32", "--repeat", "2",
            "--json", str(out)]
    result = CliRunner().invoke(build_cli(), args)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())
    assert row["case"] == "mpm_scaling_20k" and row["precision"] == "f32" and row["arch"] in ("x64", "arm64")
    assert row["particles"] > 19_000 and row["repeat"] == 2
    assert 0 < row["forward_best_s_per_substep"] <= row["forward_s_per_substep"]  # the fastest of 2, and their median

    bad = CliRunner().invoke(build_cli(), ["bench", "volumetric", "--case", "mpm_scaling_20k", "--precision", "f16"])
    assert bad.exit_code == 2 and "f16" in bad.output
