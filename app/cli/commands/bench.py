"""``deft bench sim``: simulator benchmarks with JSON output (see sim.bench)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

CASES = ("integrator", "startup", "sizes", "horizons", "thinshelllab")


def register(cli: typer.Typer) -> None:
    @cli.command()
    def bench(
        target: str = typer.Argument("sim", help="What to benchmark: sim (shells) or volumetric (pads, MPM)"),
        json_out: Path = typer.Option(None, "--json", help="Write the results to this JSON file"),
        cases: list[str] = typer.Option(None, "--case", help=f"Cases to run (default all): {', '.join(CASES)}"),
        sizes: str = typer.Option("17,33,65,129", help="Sheet resolutions (vertices per side) of the sizes case"),
        steps: int = typer.Option(10, min=2, help="Steps per run of the sizes case"),
        horizons: str = typer.Option("100,1000,5000", help="Horizons of the backward-memory case"),
        backend: str = typer.Option("cpu", help="Where the kernels run: cpu, cuda, vulkan or auto "
                                    "(falls back to the CPU, and the JSON's arch says where they ran)"),
        precision: str = typer.Option("f64", help="Floating point of the volumetric kernels: f64 or f32 (as the "
                                      "research codes it is compared with run)"),
        repeat: int = typer.Option(3, min=1, help="Volumetric cases: runs per timing (the median and the fastest "
                                   "are reported)"),
        quick: bool = typer.Option(False, "--quick", help="A seconds-long smoke run: small sheets and horizons, "
                                   "sizes and horizons cases only unless --case says otherwise"),
    ) -> None:
        """Forward and forward+backward time per step and per simulated second, memory, horizon,
        cold/warm start and the integrator choice, as JSON."""
        if target == "volumetric":  # volumetric section: FEM pads, MPM, coupling (sim.bench.volumetric)
            raise typer.Exit(_volumetric(json_out, cases or [], quick, backend, precision, repeat))
        if target != "sim":
            typer.echo(f"deft bench: unknown target {target!r} (expected 'sim' or 'volumetric')", err=True)
            raise typer.Exit(2)
        bad = sorted(set(cases or []) - set(CASES))
        if bad:
            typer.echo(f"deft bench: unknown cases {bad} (choose from {', '.join(CASES)})", err=True)
            raise typer.Exit(2)
        from sim.bench import shells as b

        if quick:
            sizes, steps, horizons = "5,9", 2, "4,8"
            cases = cases or ["sizes", "horizons"]

        runs = {
            "integrator": lambda: b.integrator_choice(backend=backend),
            "startup": lambda: b.start_up(backend),
            "sizes": lambda: b.sheet_sizes(tuple(int(s) for s in sizes.split(",")), steps, backend),
            "horizons": lambda: b.horizons(tuple(int(s) for s in horizons.split(",")), backend=backend),
            "thinshelllab": lambda: b.thinshelllab_floor(backend=backend),
        }
        results = {}
        for case in cases or CASES:
            typer.echo(f"bench {case} ...")
            results[case] = runs[case]()
            typer.echo(json.dumps(results[case], indent=1))
            if json_out is not None:  # after every case, so a long run keeps what it measured
                json_out.parent.mkdir(parents=True, exist_ok=True)
                json_out.write_text(json.dumps(results, indent=2))


def _volumetric(json_out: Path | None, cases: list[str], quick: bool, backend: str, precision: str, repeat: int) -> int:
    from sim.bench import volumetric

    bad = sorted(set(cases) - set(volumetric.CASES))
    if bad:
        typer.echo(f"deft bench volumetric: unknown cases {bad} (choose from {', '.join(volumetric.CASES)})", err=True)
        return 2
    if precision not in volumetric.PRECISIONS:
        typer.echo(f"deft bench volumetric: unknown precision {precision!r} (choose from {', '.join(volumetric.PRECISIONS)})", err=True)
        return 2
    results = volumetric.run_all(quick, cases or None, backend, precision, repeat)
    text = json.dumps(results, indent=2)
    typer.echo(text)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(text)
    return 0 if all("error" not in r for r in results) else 1
