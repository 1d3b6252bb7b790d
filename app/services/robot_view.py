"""What the viewport needs to draw a robot: each link's visual primitives and world pose.

robot/ reads the kinematic chain and leaves visuals to the viewer, so the primitives
(box, cylinder, sphere; meshes are listed with their file) are read here from the URDF's
``<visual>`` elements, and placed with robot.kinematics' link frames at a joint
configuration (the middle of every joint range unless given).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot.kinematics import link_frames
from robot.urdf import load_urdf, origin_matrix


@dataclass(frozen=True)
class LinkVisual:
    link: str
    kind: str  # "box", "cylinder", "sphere" or "mesh"
    size: tuple[float, ...]  # box: x, y, z; cylinder: radius, length; sphere: radius; mesh: scale
    pose: np.ndarray  # (4, 4) world pose of the primitive (cylinders along their local z)
    color: tuple[float, float, float]
    mesh_path: Path | None = None


def _floats(text: str | None, default: tuple[float, ...]) -> np.ndarray:
    return np.array([float(v) for v in text.split()], dtype=float) if text else np.array(default, dtype=float)


def _materials(root: ET.Element) -> dict[str, tuple[float, float, float]]:
    colors = {}
    for el in root.iter("material"):
        color = el.find("color")
        if el.get("name") and color is not None and color.get("rgba"):
            colors[el.get("name")] = tuple(_floats(color.get("rgba"), (0.7, 0.7, 0.7, 1))[:3])
    return colors


def robot_visuals(urdf: Path, base_pose: np.ndarray, q: np.ndarray | None = None) -> list[LinkVisual]:
    """Every visual of the links on the robot's chain, posed at joint positions ``q``."""
    model = load_urdf(urdf)
    q = model.mid_configuration() if q is None else np.asarray(q, dtype=float)
    frames = {model.base_link: np.eye(4)}
    for joint, frame in zip(model.chain, link_frames(model, q)):
        frames[joint.child] = np.asarray(frame)
    root = ET.parse(urdf).getroot()
    colors = _materials(root)
    out = []
    for link in root.findall("link"):
        name = link.get("name")
        if name not in frames:
            continue  # not on the base-to-tool chain: no pose from the kinematics
        for visual in link.findall("visual"):
            origin = visual.find("origin")
            local = origin_matrix(
                _floats(origin.get("xyz") if origin is not None else None, (0, 0, 0)),
                _floats(origin.get("rpy") if origin is not None else None, (0, 0, 0)),
            )
            material = visual.find("material")
            color = colors.get(material.get("name"), (0.7, 0.7, 0.7)) if material is not None else (0.7, 0.7, 0.7)
            geometry = visual.find("geometry")
            shape = geometry[0] if geometry is not None and len(geometry) else None
            if shape is None:
                continue
            pose = base_pose @ frames[name] @ local
            if shape.tag == "box":
                size = tuple(_floats(shape.get("size"), (0.1, 0.1, 0.1)))
            elif shape.tag == "cylinder":
                size = (float(shape.get("radius", 0.05)), float(shape.get("length", 0.1)))
            elif shape.tag == "sphere":
                size = (float(shape.get("radius", 0.05)),)
            elif shape.tag == "mesh":
                mesh = urdf.parent / shape.get("filename", "")
                out.append(LinkVisual(name, "mesh", tuple(_floats(shape.get("scale"), (1, 1, 1))), pose, color, mesh))
                continue
            else:
                continue
            out.append(LinkVisual(name, shape.tag, size, pose, color))
    return out
