"""Robot models read from URDF: the serial chain from a base link to a tool link.

Only what kinematics and the safety gate need is read (joint origins, axes, types and
limits); visuals are left to the viewer. ``<limit>`` may carry ``acceleration`` and
``jerk`` attributes (other URDF tools ignore them); where absent those limits are unknown
(infinite) unless the caller supplies defaults.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MOVABLE = ("revolute", "continuous", "prismatic")


class UrdfError(ValueError):
    """A URDF that cannot describe a usable robot; the message names the file and element."""


@dataclass(frozen=True)
class JointLimits:
    lower: float
    upper: float
    velocity: float
    acceleration: float = math.inf
    jerk: float = math.inf
    effort: float = math.inf


@dataclass(frozen=True)
class ChainJoint:
    """One joint on the base-to-tool chain: ``origin`` (4x4, parent to joint frame), unit
    ``axis`` in the joint frame, and its type (fixed joints are kept to carry offsets)."""

    name: str
    kind: str
    origin: np.ndarray
    axis: np.ndarray
    child: str
    limits: JointLimits | None


@dataclass(frozen=True)
class RobotModel:
    name: str
    base_link: str
    tool_link: str
    chain: tuple[ChainJoint, ...]
    source: str = ""
    joint_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint_names", tuple(j.name for j in self.chain if j.kind in MOVABLE))

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    @property
    def limits(self) -> list[JointLimits]:
        return [j.limits for j in self.chain if j.kind in MOVABLE]  # type: ignore[misc]

    def limit_array(self, name: str) -> np.ndarray:
        """One limit of every joint (``lower``, ``upper``, ``velocity``, ...) as an array."""
        return np.array([getattr(lim, name) for lim in self.limits], dtype=float)

    def mid_configuration(self) -> np.ndarray:
        return 0.5 * (self.limit_array("lower") + self.limit_array("upper"))


def _floats(text: str | None, n: int, what: str, default: tuple[float, ...]) -> np.ndarray:
    if text is None:
        return np.array(default, dtype=float)
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        raise UrdfError(f"{what}: {text!r} is not {n} numbers") from None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        raise UrdfError(f"{what}: {text!r} is not {n} finite numbers")
    return np.array(values)


def origin_matrix(xyz: np.ndarray, rpy: np.ndarray) -> np.ndarray:
    """4x4 transform of a URDF origin: rotation Rz(yaw) Ry(pitch) Rx(roll), then xyz."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    m = np.eye(4)
    m[:3, :3] = [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]
    m[:3, 3] = xyz
    return m


def _limits(joint: ET.Element, where: str, kind: str) -> JointLimits | None:
    if kind not in MOVABLE:
        return None
    el = joint.find("limit")
    if el is None:
        if kind == "continuous":
            raise UrdfError(f"{where}: continuous joint needs <limit velocity=...>")
        raise UrdfError(f"{where}: {kind} joint has no <limit> (expected lower, upper, velocity)")

    def attr(name: str, default: float | None) -> float:
        text = el.get(name)
        if text is None:
            if default is None:
                raise UrdfError(f"{where}: <limit> lacks {name}")
            return default
        try:
            value = float(text)
        except ValueError:
            raise UrdfError(f"{where}: <limit {name}={text!r}> is not a number") from None
        if math.isnan(value):
            raise UrdfError(f"{where}: <limit {name}> is NaN")
        return value

    if kind == "continuous":
        lower, upper = -math.inf, math.inf
    else:
        lower, upper = attr("lower", 0.0), attr("upper", 0.0)
        if not lower < upper:
            raise UrdfError(f"{where}: lower {lower} is not below upper {upper}")
    lim = JointLimits(lower, upper, attr("velocity", None), attr("acceleration", math.inf),
                      attr("jerk", math.inf), attr("effort", math.inf))
    for name in ("velocity", "acceleration", "jerk"):
        if not getattr(lim, name) > 0:
            raise UrdfError(f"{where}: <limit {name}> must be positive (got {getattr(lim, name)})")
    return lim


def load_urdf(path: str | Path, tool_link: str | None = None, base_link: str | None = None) -> RobotModel:
    """The chain of ``path`` from ``base_link`` (default: the root link) to ``tool_link``
    (default: the only leaf link, or a link called ``tcp``/``tool``)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except OSError as e:
        raise UrdfError(f"cannot read URDF {path}: {e.strerror or e}") from None
    except ET.ParseError as e:
        raise UrdfError(f"{path} is not valid XML: {e}") from None
    return parse_urdf(root, str(path), tool_link, base_link)


def parse_urdf(root: ET.Element, source: str, tool_link: str | None = None, base_link: str | None = None) -> RobotModel:
    if root.tag != "robot":
        raise UrdfError(f"{source}: root element is <{root.tag}> (expected <robot>)")
    links = [el.get("name") for el in root.findall("link")]
    if not links:
        raise UrdfError(f"{source}: no <link> elements")
    parent_of: dict[str, tuple[str, ChainJoint]] = {}
    for i, el in enumerate(root.findall("joint")):
        name = el.get("name") or f"#{i}"
        where = f"{source}: joint {name!r}"
        kind = el.get("type", "")
        if kind not in MOVABLE + ("fixed",):
            raise UrdfError(f"{where}: type {kind!r} is not supported (expected one of {MOVABLE + ('fixed',)})")
        parent, child = el.find("parent"), el.find("child")
        if parent is None or child is None or not parent.get("link") or not child.get("link"):
            raise UrdfError(f"{where}: needs <parent link=...> and <child link=...>")
        for link in (parent.get("link"), child.get("link")):
            if link not in links:
                raise UrdfError(f"{where}: link {link!r} is not defined")
        origin = el.find("origin")
        xyz = _floats(origin.get("xyz") if origin is not None else None, 3, f"{where} origin xyz", (0, 0, 0))
        rpy = _floats(origin.get("rpy") if origin is not None else None, 3, f"{where} origin rpy", (0, 0, 0))
        axis_el = el.find("axis")
        axis = _floats(axis_el.get("xyz") if axis_el is not None else None, 3, f"{where} axis", (1, 0, 0))
        norm = float(np.linalg.norm(axis))
        if kind in MOVABLE and norm < 1e-9:
            raise UrdfError(f"{where}: axis has zero length")
        if child.get("link") in parent_of:
            raise UrdfError(f"{where}: link {child.get('link')!r} has two parent joints")
        parent_of[child.get("link")] = (
            parent.get("link"),
            ChainJoint(name, kind, origin_matrix(xyz, rpy), axis / (norm or 1.0), child.get("link"),
                       _limits(el, where, kind)),
        )
    roots = [link for link in links if link not in parent_of]
    if len(roots) != 1:
        raise UrdfError(f"{source}: expected one root link, found {roots}")
    base_link = base_link or roots[0]
    if tool_link is None:
        has_child = {p for p, _ in parent_of.values()}
        leaves = [link for link in links if link not in has_child]
        named = [link for link in ("tcp", "tool", "tool0") if link in leaves]
        if len(leaves) != 1 and not named:
            raise UrdfError(f"{source}: several leaf links {leaves}; name the tool link")
        tool_link = named[0] if named else leaves[0]
    for what, link in (("base", base_link), ("tool", tool_link)):
        if link not in links:
            raise UrdfError(f"{source}: {what} link {link!r} is not defined (links: {links})")
    chain: list[ChainJoint] = []
    link = tool_link
    while link != base_link:
        if link not in parent_of:
            raise UrdfError(f"{source}: tool link {tool_link!r} does not descend from base link {base_link!r}")
        link, joint = parent_of[link]
        chain.append(joint)
    model = RobotModel(root.get("name", "robot"), base_link, tool_link, tuple(reversed(chain)), source)
    if model.dof == 0:
        raise UrdfError(f"{source}: no movable joint between {base_link!r} and {tool_link!r}")
    return model
