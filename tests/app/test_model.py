"""The document model: strict validation, units, quaternions, events, cross-references."""

import math

import pytest
from pydantic import ValidationError

from app.scene.model import (
    Body,
    FemElastic,
    Gripper,
    Scene,
    TactileSensor,
    ThinShell,
    Transform,
    field_unit,
    quat_from_rpy_deg,
)


def _scene(**kw):
    base = dict(
        entities=[
            {"name": "table", "shape": {"kind": "box", "size": [1, 1, 0.05]}},
            {"name": "cloth", "shape": {"kind": "cloth"}, "material": {"kind": "shell"}},
            {"type": "gripper", "name": "hand", "sensors": [{"name": "pad_l", "finger": "left"}]},
        ],
        trajectory={"tool": "hand", "keyframes": [{"time": 0}, {"time": 1, "position": [0, 0, 0.1]}]},
    )
    base.update(kw)
    return Scene.model_validate(base)


def test_dump_and_validate_round_trip():
    scene = _scene()
    assert Scene.model_validate(scene.model_dump(mode="json")) == scene
    assert [type(e) for e in scene.entities] == [Body, Body, Gripper]


def test_rpy_degrees_become_the_unit_quaternion():
    t = Transform.model_validate({"rpy_deg": [0, 0, 90]})
    assert t.rotation == pytest.approx((math.sqrt(0.5), 0, 0, math.sqrt(0.5)))
    # roll 90 then yaw 90 composes as R = Rz * Rx: check against the quaternion product
    w, x, y, z = quat_from_rpy_deg((90, 0, 90))
    h = math.sqrt(0.5)
    assert (w, x, y, z) == pytest.approx((h * h, h * h, h * h, h * h))


def test_quaternion_is_normalised_on_assignment_and_zero_rejected():
    t = Transform()
    t.rotation = (0, 0, 0, 2)
    assert t.rotation == (0, 0, 0, 1)
    t.rotation = (-2, 0, 0, 0)  # same rotation as +w: stored with w >= 0
    assert t.rotation == (1, 0, 0, 0)
    with pytest.raises(ValidationError, match="zero length"):
        t.rotation = (0, 0, 0, 0)


@pytest.mark.parametrize(
    "field, value",
    [("poisson_ratio", 0.5), ("poisson_ratio", -0.1), ("youngs_modulus", 0), ("density", -1),
     ("density", float("nan")), ("youngs_modulus", float("inf")), ("thickness", 0)],
)
def test_out_of_range_material_values_are_rejected(field, value):
    with pytest.raises(ValidationError, match=field):
        ThinShell.model_validate({field: value})
    shell = ThinShell()
    with pytest.raises(ValidationError):
        setattr(shell, field, value)


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="extra"):
        FemElastic.model_validate({"youngs_modulus": 1e5, "young": 2})


def test_field_change_events_fire_with_the_new_value():
    scene = _scene()
    seen = []
    scene.simulation.events.dt.connect(seen.append)
    scene.simulation.dt = 2e-3
    assert seen == [2e-3]


def test_units_are_in_the_schema():
    assert field_unit(ThinShell, "youngs_modulus") == "Pa"
    assert field_unit(ThinShell, "poisson_ratio") is None
    schema = Scene.model_json_schema()
    assert schema["$defs"]["Simulation"]["properties"]["dt"]["unit"] == "s"


def test_cloth_shape_requires_shell_material_and_back():
    with pytest.raises(ValidationError, match="thin shell"):
        Body.model_validate({"name": "c", "shape": {"kind": "cloth"}})
    with pytest.raises(ValidationError, match="thin shell"):
        Body.model_validate({"name": "b", "shape": {"kind": "box"}, "material": {"kind": "shell"}})


def test_gripper_opening_must_lie_in_its_range():
    with pytest.raises(ValidationError, match="outside opening_range"):
        Gripper(name="g", opening_range=(0.0, 0.05), opening=0.06)


def test_a_pad_sits_on_its_finger_centred_or_tip_distance_from_the_tip():
    assert Gripper(name="g", sensors=[{"name": "p", "finger": "left"}]).sensors[0].tip_distance is None
    assert field_unit(TactileSensor, "tip_distance") == "m"
    # finger length 0.05 m, pad width 0.02 m (along the finger): at most 0.03 m from the tip
    ok = Gripper(name="g", sensors=[{"name": "p", "finger": "left", "tip_distance": 0.03}])
    assert ok.sensors[0].tip_distance == 0.03
    with pytest.raises(ValidationError, match=r"runs past the finger's length 0.05 m \(expected tip_distance <= 0.03 m\)"):
        Gripper(name="g", sensors=[{"name": "p", "finger": "left", "tip_distance": 0.031}])
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        TactileSensor(name="p", finger="left", tip_distance=-0.001)


def test_keyframe_times_must_increase():
    with pytest.raises(ValidationError, match="strictly increasing"):
        _scene(trajectory={"tool": "hand", "keyframes": [{"time": 1}, {"time": 1}]})


def test_cross_references_are_checked():
    with pytest.raises(ValidationError, match="duplicate name 'pad_l'"):
        _scene(entities=[{"type": "gripper", "name": "pad_l", "sensors": [{"name": "pad_l", "finger": "left"}]}],
               trajectory=None)
    with pytest.raises(ValidationError, match="names no entity"):
        _scene(trajectory={"tool": "nobody"})
    with pytest.raises(ValidationError, match="no tactile sensor"):
        _scene(lab={"tactile_topics": {"ghost": "/tactile/ghost"}})
    scene = _scene()
    scene.entities[0].name = "cloth"  # nested edits bypass Scene validation; the check still sees it
    assert scene.reference_problems() == [
        (("entities", 1, "name"), "duplicate name 'cloth' (expected every entity and sensor name once)")
    ]


def test_scenes_pickle_and_copy_with_working_events():
    import copy
    import pickle

    scene = _scene()
    for clone in (pickle.loads(pickle.dumps(scene)), copy.deepcopy(scene), scene.model_copy(deep=True)):
        assert clone == scene and clone.entities[2] is not scene.entities[2]
        seen = []
        clone.simulation.events.horizon.connect(seen.append)
        clone.simulation.horizon = 7
        assert seen == [7] and scene.simulation.horizon == 200


def test_refused_assignment_leaves_the_old_value():
    scene = _scene()
    with pytest.raises(ValidationError, match="duplicate name"):
        scene.entities = [*scene.entities, scene.entities[0]]
    assert [e.name for e in scene.entities] == ["table", "cloth", "hand"]
    grip = scene.entities[2]
    with pytest.raises(ValidationError, match="outside opening_range"):
        grip.opening = 1.0
    assert grip.opening == 0.08
