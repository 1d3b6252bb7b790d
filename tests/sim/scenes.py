"""Small world specs shared by the simulator tests."""

import dataclasses

import numpy as np

from sim import geometry
from sim.spec import ColliderSpec, ContactSettings, ShellMaterial, ShellSpec, Settings, ToolSpec, WorldSpec


def sheet_spec(n=5, size=0.04, height=0.0, pinned=(), material=None, **settings) -> ShellSpec:
    v, t = geometry.sheet(n, n, size, size)
    v[:, 2] += height
    return ShellSpec("sheet", v, t, material=material or ShellMaterial(), pinned=np.array(pinned, np.int32))


def pushed_sheet(steps=12, dt=2e-3, **settings) -> WorldSpec:
    """A 5 x 5 sheet on a table while a ball presses into it and drags it sideways: active
    sticking and sliding friction against both the table and the ball."""
    shell = sheet_spec(5, 0.04, 0.00026, material=ShellMaterial(youngs_modulus=1e5, bending_stiffness=1e-5, damping=1.0))
    colliders = (
        ColliderSpec("table", "box", (0.2, 0.2, 0.01), position=(0, 0, -0.01), friction=0.4, contact_stiffness=2e3),
        ColliderSpec("ball", "sphere", (0.01, 0, 0), friction=0.3, contact_stiffness=1e3),
    )
    tools = (ToolSpec("pusher", "rigid", ("ball",), position=(0.0, 0.0, 0.0104)),)
    base = WorldSpec(settings=Settings(dt=dt, steps=steps, **settings), shells=(shell,), colliders=colliders, tools=tools)
    acts = base.default_actions()
    ramp = np.linspace(0, 1, steps + 1)[1:]
    acts[:, 0, 0] = 0.006 * ramp
    acts[:, 0, 2] = 0.0104 - 0.0004 * ramp
    return WorldSpec(settings=base.settings, shells=base.shells, colliders=colliders, tools=tools, actions=acts)


def pinched_edge(steps=30, dt=2e-3, finger_friction=1.0, lift=0.008) -> WorldSpec:
    """A 5 x 5 sheet on a table; upright parallel-jaw fingers close on the vertices of one
    edge (closing along x), then rise by ``lift``: only friction can carry the sheet up."""
    shell = sheet_spec(5, 0.04, 0.00026, material=ShellMaterial(youngs_modulus=1e5, bending_stiffness=1e-5, damping=1.0))
    half = (0.002, 0.005, 0.005)
    colliders = (
        ColliderSpec("table", "box", (0.15, 0.15, 0.01), position=(0, 0, -0.01), friction=0.4, contact_stiffness=2e3),
        *(ColliderSpec(f"gripper.{s}", "box", half, friction=finger_friction, contact_stiffness=1e4)
          for s in ("left", "right")),
    )
    tools = (ToolSpec("gripper", "parallel_jaw", ("gripper.left", "gripper.right"), (0.02, 0.0, 0.004),
                      opening=0.0015, finger_half=half),)
    base = WorldSpec(settings=Settings(dt=dt, steps=steps), shells=(shell,), colliders=colliders, tools=tools)
    acts = base.default_actions()
    s = np.arange(1, steps + 1) / steps
    close = np.clip(s / 0.3, 0, 1)
    acts[:, 0, 7] = 0.0015 + (0.0004 - 0.0015) * close
    acts[:, 0, 2] = 0.004 + lift * np.clip((s - 0.3) / 0.7, 0, 1)
    return WorldSpec(settings=base.settings, shells=base.shells, colliders=colliders, tools=tools, actions=acts)


def gathered_fold(n=9, steps=60, lift=0.02) -> WorldSpec:
    """A cloth lying flat on a table; upright fingers come down until their undersides press
    it into the table, close (gathering a fold of cloth between them), then rise by ``lift``:
    the finger lands on cloth resting on the table, the case Newton must survive."""
    thick = 5e-4
    shell = sheet_spec(n, 0.08, thick / 2, material=ShellMaterial(
        density=300.0, thickness=thick, youngs_modulus=1e6, bending_stiffness=1e-4, damping=1.0))
    half = (0.005, 0.0025, 0.0125)
    colliders = (
        ColliderSpec("table", "box", (0.2, 0.2, 0.01), position=(0, 0, -0.01), friction=0.5, contact_stiffness=1e4),
        *(ColliderSpec(f"gripper.{s}", "box", half, friction=1.0, contact_stiffness=1e4) for s in ("left", "right")),
    )
    low = half[2] + 1e-4  # the undersides 0.1 mm above the table, 0.4 mm into the cloth
    tools = (ToolSpec("gripper", "parallel_jaw", ("gripper.left", "gripper.right"), (0.0, 0.0, low + 0.01),
                      opening=0.03, finger_half=half),)
    base = WorldSpec(settings=Settings(dt=5e-3, steps=steps), shells=(shell,), colliders=colliders, tools=tools)
    acts = base.default_actions()
    s = np.arange(1, steps + 1) / steps
    down, close = np.clip(s / 0.2, 0, 1), np.clip((s - 0.2) / 0.4, 0, 1)
    acts[:, 0, 2] = low + 0.01 * (1 - down) + lift * np.clip((s - 0.6) / 0.4, 0, 1)
    acts[:, 0, 7] = 0.03 + (0.0003 - 0.03) * close
    return WorldSpec(settings=base.settings, shells=base.shells, colliders=colliders, tools=tools, actions=acts)


def stacked_sheets(steps=40, dt=2e-3, gap=0.003, self_contact=True, ball=False, **settings) -> WorldSpec:
    """Two 5 x 5 sheets of 0.26 mm: one lying on a table, the other ``gap`` above it and
    shifted off the lower sheet's vertices and edges (its vertices land on faces). With
    ``ball``, a ball presses the upper sheet onto the lower and drags it along x: sticking
    and sliding friction between the sheets."""
    material = ShellMaterial(thickness=2.6e-4, youngs_modulus=1e5, bending_stiffness=1e-5, damping=1.0, friction=0.5)
    lower = sheet_spec(5, 0.04, 1.3e-4, material=material)
    v, t = geometry.sheet(5, 5, 0.04, 0.04)
    v += (0.0033, 0.0021, 1.3e-4 + gap)  # no vertex lands on an edge below (where contact points kink)
    upper = ShellSpec("upper", v, t, material=material)
    colliders = [ColliderSpec("table", "box", (0.2, 0.2, 0.01), position=(0, 0, -0.01), friction=0.4,
                              contact_stiffness=2e3)]
    tools = ()
    if ball:
        colliders.append(ColliderSpec("ball", "sphere", (0.01, 0, 0), friction=0.8, contact_stiffness=1e3))
        tools = (ToolSpec("pusher", "rigid", ("ball",), position=(0.0033, 0.0021, 0.0107)),)  # over an upper vertex
    base = WorldSpec(settings=Settings(dt=dt, steps=steps, **settings), shells=(lower, upper),
                     colliders=tuple(colliders), tools=tools, contact=ContactSettings(self_contact=self_contact))
    if not ball:
        return base
    acts = base.default_actions()
    ramp = np.linspace(0, 1, steps + 1)[1:]
    acts[:, 0, 0] = 0.0033 + 0.001 * ramp
    acts[:, 0, 2] = 0.0107 - 0.00035 * np.minimum(2 * ramp, 1)
    return dataclasses.replace(base, actions=acts)


def folded_strip(n=9, steps=60, dt=2e-3, height=0.004, self_contact=True) -> WorldSpec:
    """A 3 x n strip folded in two (and at rest so: a crease that does not spring open): its
    first half on a table, the second turned back over it ``height`` above, the crease
    standing upright. The limp top half falls onto the bottom one: the sheet against itself."""
    length, width = 0.06, 0.01
    rest, tris = geometry.sheet(n, 3, length, width)
    u = rest[:, 0] + length / 2  # 0 .. length along the strip
    half = length / 2
    x = rest.copy()
    x[:, 2] = 1.3e-4
    top = u > half + 1e-9
    x[top, 0] = (2 * half - u[top]) - length / 2  # turned back over the vertices below
    x[top, 2] += height
    crease = np.isclose(u, half)
    x[crease, 2] += height / 2
    material = ShellMaterial(thickness=2.6e-4, youngs_modulus=1e5, bending_stiffness=1e-8, damping=1.0)
    shell = ShellSpec("strip", x, tris, material=material)
    table = ColliderSpec("table", "box", (0.2, 0.2, 0.01), position=(0, 0, -0.01), friction=0.4, contact_stiffness=2e3)
    return WorldSpec(settings=Settings(dt=dt, steps=steps), shells=(shell,), colliders=(table,),
                     contact=ContactSettings(self_contact=self_contact))


def crossed_strips(steps=30, dt=2e-3, gap=1e-3, self_contact=True, slide=0.0, **settings) -> WorldSpec:
    """Two strips of one quad each (4 x 0.4 cm, 0.26 mm thick) crossed like a plus sign: the
    lower one along y, pinned at its corners; the upper one along x, ``gap`` above it, falls
    onto it (moving along x at ``slide`` m/s). No vertex of either strip is over the other's
    faces: only their long edges, crossing, can touch."""
    material = ShellMaterial(thickness=2.6e-4, youngs_modulus=1e5, bending_stiffness=1e-5, damping=1.0, friction=0.5)
    v, t = geometry.sheet(2, 2, 0.004, 0.04)
    lower = ShellSpec("lower", v, t, material=material, pinned=np.arange(4, dtype=np.int32))
    v, t = geometry.sheet(2, 2, 0.04, 0.004)
    v[:, 2] += gap
    upper = ShellSpec("upper", v, t, material=material, velocity=(slide, 0.0, 0.0))
    return WorldSpec(settings=Settings(dt=dt, steps=steps, **settings), shells=(lower, upper),
                     contact=ContactSettings(self_contact=self_contact))
