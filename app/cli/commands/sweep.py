"""``deft sweep SCENE...``: independent optimization runs over scenes, optimizers and seeds
through Ray, summarised as JSON and a chart."""

from __future__ import annotations

from pathlib import Path

import typer


def register(cli: typer.Typer) -> None:
    @cli.command()
    def sweep(
        scenes: list[Path] = typer.Argument(..., help="Scene files (.yaml) with tasks", show_default=False),
        optimizer: list[str] = typer.Option(["hybrid", "adam", "cmaes"], help="Optimizers to run (repeat the option)"),
        seeds: int = typer.Option(3, min=1, help="Seeds 0..N-1 per scene and optimizer"),
        iters: int = typer.Option(0, min=0, help="Iterations per run (0: each task's default)"),
        out: Path = typer.Option(Path("out/sweep"), help="Folder for the runs, benchmark.json and benchmark.png"),
        address: str = typer.Option(None, help="Ray cluster address (default: a local Ray on this machine)"),
        serial: bool = typer.Option(False, help="Run in this process, one after another, without Ray"),
        report_only: bool = typer.Option(False, help="Summarise the runs already in --out without running any"),
    ) -> None:
        """Run every scene x optimizer x seed as an independent job (Ray), stopping each run at
        success or its iteration budget; writes benchmark.json and benchmark.png. Runs already
        in the folder are resumed (finished ones cost nothing)."""
        raise typer.Exit(run_sweep(list(scenes), list(optimizer), seeds, iters, out, address, serial, report_only))


def run_sweep(scenes: list[Path], optimizers: list[str], seeds: int, iters: int, out: Path, address: str | None,
              serial: bool, report_only: bool = False) -> int:
    from app.services.optimize_sweep import requests_for, run_all, saved_result, summarize, write_report
    from sim.optim.optimizers import OPTIMIZERS

    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    missing = [str(s) for s in scenes if not s.is_file()]
    if unknown or missing:
        typer.echo(f"deft sweep: unknown optimizers {unknown} (choose from {list(OPTIMIZERS)})" if unknown else f"deft sweep: no such scene files {missing}", err=True)
        return 2
    requests = requests_for(scenes, optimizers, list(range(seeds)), out, iters)
    if report_only:
        results = [r for r in map(saved_result, requests) if r is not None]
        typer.echo(f"{len(results)} of {len(requests)} runs found in {out}")
        if not results:
            return 2
    else:
        typer.echo(f"{len(requests)} runs ({'serial' if serial else 'Ray at ' + address if address else 'local Ray'})")
        results = run_all(requests, address=address, serial=serial)
    json_path, png_path = write_report(results, out)
    for task, rows in summarize(results).items():
        for opt, row in rows.items():
            if opt == "hybrid_at_least_as_good":
                continue
            wall = row["wall_time_to_success_median"]
            typer.echo(
                f"{task:24s} {opt:7s} solved {row['successes']}/{row['seeds']}  final loss {row['final_loss_median']:.3g}  "
                f"to success {'-' if wall is None else f'{wall:.1f} s'}"
            )
    typer.echo(f"wrote {json_path} and {png_path}")
    return 0
