"""Immutable frames handed from the simulation thread to the UI, and the run that holds them.

A frame is a snapshot of one simulated instant: numpy copies made on the simulation thread
and frozen (read-only), so the GUI thread can draw them while the simulator goes on. A run
keeps every frame of the last simulation or optimization preview, so scrubbing is a lookup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np


def frozen(array) -> np.ndarray:
    """A read-only float32 copy (the simulator's buffers are reused between steps). Single
    precision is what the viewport draws, and a run keeps every frame: a long pour run's
    particle positions and velocities took ~280 MB in float64."""
    out = np.array(array, dtype=np.float32, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class EntityFrame:
    """One entity at one instant: its points (vertices or particles) and per-point fields."""

    points: np.ndarray  # (N, 3) metres; empty for a rigid entity given by its pose
    fields: Mapping[str, np.ndarray] = field(default_factory=dict)  # e.g. "pressure": (N,)
    pose: np.ndarray | None = None  # (4, 4) world pose of a rigid entity or tool
    faces: np.ndarray | None = None  # (F, 3) surface triangles over ``points`` of a deforming solid (FEM)
    opening: float | None = None  # metres between a gripper's fingers


@dataclass(frozen=True)
class TactileFrame:
    """One pad's sensor output at one instant."""

    image: np.ndarray | None = None  # (H, W) or (H, W, 3) in [0, 1]
    markers: np.ndarray | None = None  # (M, 2) rest positions in the image plane, pixels
    marker_displacement: np.ndarray | None = None  # (M, 2) pixels
    pressure: np.ndarray | None = None  # (H, W) pascals
    normal_force: float = 0.0  # newtons
    shear_force: float = 0.0  # newtons


@dataclass(frozen=True)
class Frame:
    index: int
    time: float  # seconds since the start of the run
    entities: Mapping[str, EntityFrame] = field(default_factory=dict)
    tool_position: np.ndarray | None = None  # (3,) metres
    contact_points: np.ndarray | None = None  # (K, 3) metres
    contact_forces: np.ndarray | None = None  # (K, 3) newtons
    tactile: Mapping[str, TactileFrame] = field(default_factory=dict)


class Run:
    """The frames of one simulation or optimization preview, in time order."""

    def __init__(self, kind: str, frames: list[Frame] | None = None) -> None:
        self.kind = kind  # "simulation" or "optimization preview"
        self._frames: list[Frame] = []
        self._times: np.ndarray | None = None  # cached: scrubbing looks times up often
        for frame in frames or []:
            self.append(frame)

    def append(self, frame: Frame) -> None:
        if self._frames and frame.time < self._frames[-1].time:
            raise ValueError(f"frame {frame.index} goes back in time ({frame.time} s)")
        self._frames.append(frame)
        self._times = None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        """Bytes held by the frames' arrays (what scrubbing keeps in memory)."""
        def arrays(frame: Frame):
            for data in frame.entities.values():
                yield from (data.points, data.pose, data.faces, *data.fields.values())
            yield from (frame.tool_position, frame.contact_points, frame.contact_forces)
            for t in frame.tactile.values():
                yield from (t.image, t.markers, t.marker_displacement, t.pressure)

        held = {id(a): a.nbytes for f in self._frames for a in arrays(f) if isinstance(a, np.ndarray)}
        return sum(held.values())  # an array shared by frames (a body's faces) counts once

    def __getitem__(self, index: int) -> Frame:
        return self._frames[index]

    @property
    def times(self) -> np.ndarray:
        if self._times is None:
            self._times = np.array([f.time for f in self._frames])
            self._times.flags.writeable = False
        return self._times

    def index_at(self, time: float) -> int:
        """The last frame at or before ``time`` (the first frame before the run starts)."""
        if not self._frames:
            raise IndexError("the run has no frames")
        return max(0, int(np.searchsorted(self.times, time, side="right")) - 1)

    def tactile_forces(self, pad: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, total normal force, total shear force) of one pad over the run."""
        rows = [(f.time, f.tactile[pad].normal_force, f.tactile[pad].shear_force) for f in self._frames if pad in f.tactile]
        if not rows:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        t, n, s = np.array(rows).T
        return t, n, s
