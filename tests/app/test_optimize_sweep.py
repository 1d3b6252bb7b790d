"""Sweeps and the task benchmark: the summary table, the hybrid verdict, and runs through Ray."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import build_cli
from app.services.optimize_sweep import requests_for, run_all, summarize, write_report

REACH = Path(__file__).resolve().parents[2] / "assets" / "scenes" / "tasks" / "reach.yaml"


def _result(opt, seed, solved, loss, wall):
    curve = [{"wall_time": wall / 2, "best_loss": loss * 10}, {"wall_time": wall, "best_loss": loss}]
    return {"task": "t", "optimizer": opt, "seed": seed, "solved": solved, "best_loss": loss, "iterations_to_success": 2 if solved else None,
            "wall_time_to_success": wall if solved else None, "wall_time": wall, "success_threshold": 0.01, "time_budget_s": 60.0, "curve": curve}


def test_summary_counts_successes_and_judges_the_hybrid(tmp_path):
    results = [_result("hybrid", s, s < 2, 0.005, 3.0) for s in range(3)]
    results += [_result("adam", s, s < 1, 0.02, 2.0) for s in range(3)]
    results += [_result("cmaes", s, False, 0.03, 9.0) for s in range(3)]
    table = summarize(results)["t"]
    assert table["hybrid"]["success_rate"] == pytest.approx(2 / 3) and table["adam"]["successes"] == 1
    assert table["cmaes"]["wall_time_to_success_median"] is None
    assert table["hybrid_at_least_as_good"] is True
    worse = [r for r in results if r["optimizer"] != "hybrid"] + [_result("hybrid", s, False, 0.5, 3.0) for s in range(3)]
    assert summarize(worse)["t"]["hybrid_at_least_as_good"] is False
    json_path, png_path = write_report(results, tmp_path)
    assert json.loads(json_path.read_text())["summary"]["t"]["adam"]["seeds"] == 3
    assert png_path.stat().st_size > 10_000


@pytest.mark.slow  # starting a local Ray instance takes 20-80 s on the 2-core machine
def test_runs_through_local_ray_match_serial_runs(tmp_path):
    requests = requests_for([REACH], ["hybrid", "adam"], [1], tmp_path / "ray")
    via_ray = run_all(requests)
    serial = run_all(requests_for([REACH], ["hybrid", "adam"], [1], tmp_path / "serial"), serial=True)
    assert [r["optimizer"] for r in via_ray] == ["hybrid", "adam"]
    assert all(r["solved"] for r in via_ray)
    # the same seed gives the same run in a Ray worker as here
    assert [[c["loss"] for c in r["curve"]] for r in via_ray] == [[c["loss"] for c in r["curve"]] for r in serial]


def test_taskbench_command_writes_json_and_chart(tmp_path):
    result = CliRunner().invoke(build_cli(), ["taskbench", "--task", "reach", "--seeds", "1", "--serial", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "benchmark.json").read_text())["summary"]
    assert set(summary["reach"]) == {"hybrid", "adam", "cmaes", "hybrid_at_least_as_good"}
    assert (tmp_path / "benchmark.png").is_file()
    again = CliRunner().invoke(build_cli(), ["taskbench", "--task", "reach", "--seeds", "1", "--report-only", "--out", str(tmp_path)])
    assert again.exit_code == 0 and "3 of 3 runs found" in again.output
    assert json.loads((tmp_path / "benchmark.json").read_text())["summary"] == summary
    bad = CliRunner().invoke(build_cli(), ["sweep", str(REACH), "--optimizer", "sgd"])
    assert bad.exit_code == 2 and "sgd" in bad.output
