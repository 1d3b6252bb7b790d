"""Tactile readings of a flat pad: untouched equals the reference, a pressed sphere leaves
a round imprint where it pressed, forces and torques agree with the nodal forces."""

import numpy as np
import pytest
import torch

from sim.fem.mesh import dome_pad, flat_pad
from sim.fem.solver import FemSystem, Trajectory, stable_dt
from sim.fem.spec import ContactParams, FemBodySpec, FemMaterial, ShapeSpec
from sim.tactile.sensor import TactileConfig, TactileSensor

R, DEPTH, CENTRE = 0.006, 5e-4, (0.003, -0.004)


@pytest.fixture(scope="module")
def pressed():
    mesh = flat_pad(cells=(18, 24, 4))
    body = FemBodySpec("pad", mesh, FemMaterial(1.5e5, 0.45, 1100.0, 200.0), mass_scale=100.0)
    contact = ContactParams(friction=0.5)
    sim = FemSystem([body], [ShapeSpec("sphere", (R, 0, 0))], contact, dt=0.9 * stable_dt([body], contact), substeps=20)
    T = 40
    top = mesh.nodes[:, 2].max()
    sphere = torch.zeros(T + 1, 1, 3, dtype=torch.float64)
    sphere[:, 0, :2] = torch.tensor(CENTRE)
    ramp = torch.clamp(torch.arange(T + 1, dtype=torch.float64) / 25, max=1.0)
    sphere[:, 0, 2] = top + R + 1e-3 - (1e-3 + DEPTH) * ramp
    pad = torch.zeros(T + 1, 1, 3, dtype=torch.float64)
    xs, fcs = sim.rollout(Trajectory(pad, sphere))
    sensor = TactileSensor(mesh, TactileConfig(image_size=(120, 90)))
    frames = sensor.read(xs, fcs, np.eye(3), torch.zeros(T, 3, dtype=torch.float64))
    return sensor, frames, xs, fcs


def test_untouched_pad_image_equals_reference(pressed):
    sensor, frames, _, _ = pressed
    rest = torch.from_numpy(sensor.mesh.nodes)
    reference = sensor.read(rest, torch.zeros_like(rest), np.eye(3), torch.zeros(3, dtype=torch.float64))
    before_contact = 2  # the sphere starts 1 mm above the gel
    assert frames.total_force[before_contact].abs().max() == 0.0
    assert (frames.image[before_contact] - reference.image).abs().max() < 1e-3
    assert frames.depth[before_contact].abs().max() < 1e-6
    assert frames.marker_displacement[before_contact].abs().max() < 1e-6
    # and the reference image is not trivial: lit gel with dark markers
    img = reference.image
    assert img.mean() > 0.3 and img.min() < 0.5 * img.mean()


def test_pressed_sphere_leaves_round_imprint_at_the_right_place(pressed):
    sensor, frames, _, _ = pressed
    depth = frames.depth[-1].numpy()
    h, w = depth.shape
    xs = sensor.lo[0] + (np.arange(w) + 0.5) * sensor.pixel[0]
    ys = sensor.lo[1] + (np.arange(h) + 0.5) * sensor.pixel[1]
    X, Y = np.meshgrid(xs, ys)
    weight = depth.clip(min=0) / depth.clip(min=0).sum()
    cx, cy = (weight * X).sum(), (weight * Y).sum()
    assert np.hypot(cx - CENTRE[0], cy - CENTRE[1]) < 3e-4
    core = depth > 0.3 * depth.max()  # the imprint, not the shallow far field
    eig = np.linalg.eigvalsh(np.cov(np.stack([X[core], Y[core]])))
    assert eig[0] / eig[1] > 0.8  # round
    # deepest point under the sphere, about as deep as pressed (less the penalty's give)
    assert depth.max() == pytest.approx(DEPTH, rel=0.2)
    # the imprint shows in the image: changed pixels sit around the contact
    ref = sensor.render(sensor.rest_height, sensor.rest_markers)
    changed = (frames.image[-1] - ref).abs().sum(-1).numpy() > 0.05
    assert changed.any()
    assert np.hypot(X[changed].mean() - CENTRE[0], Y[changed].mean() - CENTRE[1]) < 1.5e-3
    # markers near the contact move; far ones barely
    d = frames.marker_displacement[-1].norm(dim=-1).numpy()
    dist = np.hypot(*(sensor.marker_rest_xy - np.array(CENTRE)).T)
    assert d[dist < 3e-3].mean() > 5 * d[dist > 8e-3].mean()


def test_force_and_torque_are_the_sums_of_nodal_forces(pressed):
    sensor, frames, xs, fcs = pressed
    assert frames.total_force[-1][2] < 0  # the sphere pushes the pad down
    assert torch.allclose(frames.total_force[-1], fcs[-1].sum(0))
    torque = torch.linalg.cross(xs[-1], fcs[-1], dim=-1).sum(0)
    assert torch.allclose(frames.torque[-1], torque)
    # the contact acts about the sphere's footprint on the gel: torque ~ centre x force
    centre = torch.tensor([*CENTRE, sensor.mesh.nodes[:, 2].max()], dtype=torch.float64)
    expected = torch.linalg.cross(centre, frames.total_force[-1], dim=-1)
    assert torch.allclose(frames.torque[-1][:2], expected[:2], rtol=0.1)


def test_readings_are_differentiable_wrt_node_positions(pressed):
    sensor, _, xs, fcs = pressed
    x = xs[-1].clone().requires_grad_(True)
    frame = sensor.read(x, fcs[-1], np.eye(3), torch.zeros(3, dtype=torch.float64))
    direction = torch.randn_like(x, generator=torch.Generator().manual_seed(0)) * 1e-5
    loss = lambda f: f.image.sum() + 1e3 * f.markers.sum() + 1e3 * f.depth.sum()  # noqa: E731
    loss(frame).backward()
    h = 1e-3
    with torch.no_grad():
        up = loss(sensor.read(x + h * direction, fcs[-1], np.eye(3), torch.zeros(3, dtype=torch.float64)))
        down = loss(sensor.read(x - h * direction, fcs[-1], np.eye(3), torch.zeros(3, dtype=torch.float64)))
    assert float((x.grad * direction).sum()) == pytest.approx(float((up - down) / (2 * h)), rel=1e-3)


def test_dome_sensor_has_about_136_markers_inside_its_footprint():
    sensor = TactileSensor(dome_pad(), TactileConfig(markers=136, image_size=(64, 64)))
    assert 120 <= len(sensor.rest_markers) <= 150
    assert 0.7 < float(sensor.mask.double().mean()) < 0.85  # a disk in its square (pi/4)


def test_bad_tactile_config_is_refused():
    with pytest.raises(ValueError, match="image_size"):
        TactileConfig(image_size=(1, 10))
    with pytest.raises(ValueError, match="markers"):
        TactileConfig(markers=0)
