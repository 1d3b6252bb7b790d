"""Many independent optimization runs (scenes x optimizers x seeds) through Ray, and the
task benchmark built on them: success rate, final loss, iterations and wall time to success
per task and optimizer, as JSON and a loss-vs-wall-time chart (one panel per task).

Ray runs locally by default (a private local cluster of this machine's cores) or on the
cluster at a given address; ``serial=True`` runs in this process instead (debugging, tests).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from app.services.optimize import OptimizationRun
from sim.optim.problem import OptimizationError


@dataclass(frozen=True)
class RunRequest:
    scene: str  # scene file path
    optimizer: str
    seed: int
    out_dir: str
    iterations: int = 0  # 0: the task's default


def run_one(request: RunRequest) -> dict:
    """One optimization to success or its iteration budget: its summary and loss curve.
    A folder that already holds the run is resumed, so an interrupted sweep continues."""
    from app.scene.io import load_scene
    from app.services.optimize_tasks import bind_scene_task

    return {**run_task(bind_scene_task(load_scene(request.scene)), request), "scene": request.scene}


def run_task(task, request: RunRequest) -> dict:
    """run_one on a bound task. A run that cannot go on (OptimizationError) ends with its
    error in the result and in run.json instead of raising, so the sweep goes on."""
    if (Path(request.out_dir) / "state.pt").exists():
        run = OptimizationRun.resume(task, request.out_dir)
    else:
        run = OptimizationRun(task, request.out_dir, request.optimizer, request.seed)
    budget = request.iterations or task.defaults.iterations
    try:
        for _ in run.reports(max(0, budget - run.iterations_done)):
            pass
    except OptimizationError as exc:
        run.record_error(str(exc))
    return {**run.summary(), "scene": request.scene, "time_budget_s": task.defaults.time_budget_s, "curve": run.curve}


def saved_result(request: RunRequest) -> dict | None:
    """A finished or interrupted run's result from its folder, judged by the scene's current
    success threshold, without running anything; None where the folder holds no run."""
    from app.scene.io import load_scene
    from sim.tasks.registry import task_definition

    folder = Path(request.out_dir)
    try:
        summary = json.loads((folder / "run.json").read_text())
    except FileNotFoundError:
        return None
    # a run stopped by an error before its first iteration has run.json only
    curve = json.loads((folder / "curve.json").read_text()) if (folder / "curve.json").exists() else []
    scene = load_scene(request.scene)
    threshold = scene.task.success_threshold
    solved_at = next((r for r in curve if r["best_loss"] <= threshold), None)
    return {
        **summary,
        "success_threshold": threshold,
        "solved": solved_at is not None,
        "iterations_to_success": solved_at["iteration"] if solved_at else None,
        "wall_time_to_success": solved_at["wall_time"] if solved_at else None,
        "scene": request.scene,
        "time_budget_s": task_definition(scene.task.kind).defaults.time_budget_s,
        "curve": curve,
    }


def run_all(requests: list[RunRequest], address: str | None = None, serial: bool = False) -> list[dict]:
    """Every request's result, in request order."""
    if serial:
        return [run_one(r) for r in requests]
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        # A cluster address when given; otherwise a private local instance of this machine.
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        remote = ray.remote(num_cpus=1)(run_one)
        return ray.get([remote.remote(r) for r in requests])
    finally:
        if started_here:
            ray.shutdown()


def summarize(results: list[dict]) -> dict:
    """Per task and optimizer: success rate, final loss, iterations and wall time to success;
    and per task whether the hybrid did at least as well as the better of Adam and CMA-ES."""
    table: dict[str, dict[str, dict]] = {}
    for r in results:
        table.setdefault(r["task"], {}).setdefault(r["optimizer"], []).append(r)
    out: dict[str, dict] = {}
    for task, by_opt in table.items():
        out[task] = {}
        for opt, runs in by_opt.items():
            solved = [r for r in runs if r["solved"]]
            out[task][opt] = {
                "seeds": len(runs),
                "successes": len(solved),
                "success_rate": len(solved) / len(runs),
                "final_loss_median": statistics.median(_loss(r["best_loss"]) for r in runs),
                "runs_stopped_by_errors": sum(1 for r in runs if r.get("error")),
                "iterations_to_success_median": statistics.median(r["iterations_to_success"] for r in solved) if solved else None,
                "wall_time_to_success_median": statistics.median(r["wall_time_to_success"] for r in solved) if solved else None,
                "wall_time_max": max(r["wall_time"] for r in runs),
                "time_budget_s": runs[0]["time_budget_s"],
            }
        out[task]["hybrid_at_least_as_good"] = _hybrid_verdict(out[task])
    return out


def _loss(value: float | None) -> float:
    return float("inf") if value is None else value  # None: no iteration evaluated


def _rank(row: dict) -> tuple:
    """Better = more successes, then faster to success, then lower final loss."""
    wall = row["wall_time_to_success_median"]
    return (-row["successes"], wall if wall is not None else float("inf"), row["final_loss_median"])


def _hybrid_verdict(rows: dict) -> bool | None:
    if not {"hybrid", "adam", "cmaes"} <= rows.keys():
        return None
    best_other = min((rows["adam"], rows["cmaes"]), key=_rank)
    h = rows["hybrid"]
    if h["successes"] != best_other["successes"]:
        return h["successes"] > best_other["successes"]
    if h["successes"] == 0:
        return h["final_loss_median"] <= best_other["final_loss_median"]
    return True  # same number of seeds solved within the budget


def write_report(results: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """benchmark.json (every run and the summary) and benchmark.png (the chart)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / "benchmark.json", out_dir / "benchmark.png"
    json_path.write_text(json.dumps({"summary": summarize(results), "runs": results}, indent=1))
    chart(results, png_path)
    return json_path, png_path


COLORS = {"hybrid": "tab:green", "adam": "tab:blue", "cmaes": "tab:orange"}


def chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in results})
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        seen = set()
        for r in (r for r in results if r["task"] == task):
            opt = r["optimizer"]
            xs = [row["wall_time"] for row in r["curve"]]
            ys = [max(row["best_loss"], 1e-300) for row in r["curve"]]
            ax.plot(xs, ys, color=COLORS.get(opt), alpha=0.8, label=None if opt in seen else opt)
            seen.add(opt)
        ax.axhline(next(r["success_threshold"] for r in results if r["task"] == task), color="k", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(task)
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("best loss")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def requests_for(scenes: list[Path], optimizers: list[str], seeds: list[int], out_dir: Path, iterations: int = 0) -> list[RunRequest]:
    return [
        RunRequest(str(scene), opt, seed, str(out_dir / scene.stem / opt / f"seed{seed}"), iterations)
        for scene in scenes
        for opt in optimizers
        for seed in seeds
    ]

