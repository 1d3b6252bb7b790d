"""The studio's tactile pressure map (app.compile.volumetric): each gel node's inward normal
force over its area, spread over the image by linear interpolation, zero off the gel."""

from __future__ import annotations

import numpy as np

from app.compile.volumetric import _pressure_map, pad_specs
from app.scene import model as m
from sim.tactile.sensor import TactileSensor


def _flat_pad_sensor() -> tuple[TactileSensor, np.ndarray]:
    pad, config = pad_specs(m.TactileSensor(name="pad", finger="left"))
    sensor = TactileSensor(pad.mesh, config)
    return sensor, pad.mesh.nodes[sensor.gel_nodes]


def test_uniform_and_linear_pressures_come_back_exactly():
    sensor, gel = _flat_pad_sensor()
    area = np.linspace(1e-6, 3e-6, len(gel))  # unequal node areas: force over area, node by node
    inside = sensor.mask.numpy()
    assert inside.mean() > 0.9

    forces = np.zeros((len(gel), 3))
    forces[:, 2] = -2500.0 * area  # pressing into the gel (pad frame: gel faces +z)
    image = _pressure_map(sensor, forces, area)
    assert image.shape == sensor.config.image_size
    np.testing.assert_allclose(image[inside], 2500.0)
    assert not image[~inside].any()

    ramp = 1e3 * (gel[:, 0] - gel[:, 0].min()) / np.ptp(gel[:, 0])  # Pa, rising along x
    forces[:, 2] = -ramp * area
    image = _pressure_map(sensor, forces, area)
    h, w = sensor.config.image_size
    xs = sensor.lo[0] + (np.arange(w) + 0.5) * sensor.pixel[0]
    expected = np.broadcast_to(1e3 * (xs - gel[:, 0].min()) / np.ptp(gel[:, 0]), (h, w))
    np.testing.assert_allclose(image[inside], expected[inside], atol=1e-6)


def test_no_contact_or_a_pull_is_no_pressure():
    sensor, gel = _flat_pad_sensor()
    area = np.full(len(gel), 2e-6)
    pulled = np.zeros((len(gel), 3))
    pulled[:, 2] = 1e-3  # away from the gel: contact only ever pushes
    assert not _pressure_map(sensor, pulled, area).any()
    assert not _pressure_map(sensor, np.zeros((len(gel), 3)), area).any()
