"""Write simulated shell frames as VTK XML PolyData (.vtp) plus a ParaView collection (.pvd).

Plain XML with ASCII arrays: ParaView and pyvista read it, and app/ stays free of VTK.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_vtp(path: Path, points: np.ndarray, triangles: np.ndarray, point_data: dict[str, np.ndarray]) -> None:
    def array(name: str, values: np.ndarray, kind: str, comps: int) -> str:
        text = " ".join(map(repr if kind.startswith("Float") else str, np.asarray(values).ravel().tolist()))
        return f'<DataArray type="{kind}" Name="{name}" NumberOfComponents="{comps}" format="ascii">{text}</DataArray>'

    data = "".join(array(k, v, "Float64", v.shape[1] if v.ndim > 1 else 1) for k, v in point_data.items())
    path.write_text(
        '<?xml version="1.0"?>\n<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian">\n<PolyData>\n'
        f'<Piece NumberOfPoints="{len(points)}" NumberOfPolys="{len(triangles)}">\n'
        f"<PointData>{data}</PointData>\n"
        f"<Points>{array('Points', points, 'Float64', 3)}</Points>\n"
        f"<Polys>{array('connectivity', triangles, 'Int64', 1)}"
        f"{array('offsets', 3 * np.arange(1, len(triangles) + 1), 'Int64', 1)}</Polys>\n"
        "</Piece>\n</PolyData>\n</VTKFile>\n"
    )


def write_pvd(path: Path, entries: list[tuple[float, str]]) -> None:
    rows = "\n".join(f'<DataSet timestep="{t!r}" part="0" file="{name}"/>' for t, name in entries)
    path.write_text(
        '<?xml version="1.0"?>\n<VTKFile type="Collection" version="0.1">\n<Collection>\n'
        f"{rows}\n</Collection>\n</VTKFile>\n"
    )


def write_particles(path: Path, points: np.ndarray, point_data: dict[str, np.ndarray]) -> None:
    """Particles (MPM bodies) as PolyData vertices, one per point."""
    def array(name: str, values: np.ndarray, kind: str, comps: int) -> str:
        text = " ".join(map(repr if kind.startswith("Float") else str, np.asarray(values).ravel().tolist()))
        return f'<DataArray type="{kind}" Name="{name}" NumberOfComponents="{comps}" format="ascii">{text}</DataArray>'

    n = len(points)
    data = "".join(array(k, v, "Float64", v.shape[1] if v.ndim > 1 else 1) for k, v in point_data.items())
    path.write_text(
        '<?xml version="1.0"?>\n<VTKFile type="PolyData" version="0.1" byte_order="LittleEndian">\n<PolyData>\n'
        f'<Piece NumberOfPoints="{n}" NumberOfVerts="{n}">\n'
        f"<PointData>{data}</PointData>\n"
        f"<Points>{array('Points', points, 'Float64', 3)}</Points>\n"
        f"<Verts>{array('connectivity', np.arange(n), 'Int64', 1)}{array('offsets', np.arange(1, n + 1), 'Int64', 1)}</Verts>\n"
        "</Piece>\n</PolyData>\n</VTKFile>\n"
    )
