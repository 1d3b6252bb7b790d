"""Undo/redo: every edit is a command; undoing all restores the document, redoing all the edit."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.commands import (
    CommandError,
    SetField,
    UndoStack,
    add_entity,
    add_keyframe,
    duplicate_entity,
    remove_entity,
    remove_keyframe,
    rename_entity,
    set_keyframe,
)
from app.scene.model import Scene


def make_scene() -> Scene:
    return Scene.model_validate(
        {
            "entities": [
                {"name": "table", "shape": {"kind": "box", "size": [1, 1, 0.05]}},
                {"name": "block", "shape": {"kind": "box"}, "material": {"kind": "fem_elastic"}},
                {"type": "gripper", "name": "hand", "sensors": [{"name": "pad", "finger": "left"}]},
            ],
            "trajectory": {"tool": "hand", "keyframes": [{"time": 0}, {"time": 1, "position": [0, 0, 0.1]}]},
            "task": {"loss": [{"kind": "lift_height", "entity": "block", "target": [0.1]}]},
            "lab": {"tactile_topics": {"pad": "/tactile/pad"}},
        }
    )


def dump(scene):
    return scene.model_dump(mode="json")


@pytest.fixture
def stack():
    return UndoStack(make_scene())


def test_set_undo_redo_and_texts(stack):
    stack.push(SetField(("simulation", "dt"), 2e-3))
    assert stack.scene.simulation.dt == 2e-3 and stack.undo_text == "set simulation.dt"
    stack.undo()
    assert stack.scene.simulation.dt == 1e-3 and stack.redo_text == "set simulation.dt" and not stack.can_undo
    stack.redo()
    assert stack.scene.simulation.dt == 2e-3 and not stack.can_redo
    stack.push(SetField(("name",), "renamed", text="rename scene"))
    stack.undo()
    assert stack.texts() == ["set simulation.dt", "rename scene"] and stack.index == 1


def test_refused_edit_changes_nothing_and_records_nothing(stack):
    before, events = dump(stack.scene), []
    stack.document_changed.connect(events.append)
    for bad in [
        SetField(("simulation", "dt"), -1.0),
        SetField(("entities", 1, "material", "poisson_ratio"), 0.5),
        SetField(("entities", 1, "name"), "table"),
        remove_entity(stack.scene, "hand"),  # the trajectory drives it
        add_entity({"name": "pad", "shape": {"kind": "sphere"}}),
        set_keyframe(0, {"time": 2.0}),  # would put keyframe 0 after keyframe 1
    ]:
        with pytest.raises(CommandError):
            stack.push(bad)
    assert dump(stack.scene) == before and len(stack) == 0 and events == []


def test_continuous_edits_merge_into_one_step(stack):
    path = ("entities", 1, "transform", "position")
    for z in (0.1, 0.2, 0.3):
        stack.push(SetField(path, (0, 0, z), merge_id="drag-block"))
    stack.push(SetField(path, (0, 0, 0.4)))  # no merge id: a step of its own
    assert len(stack) == 2
    stack.undo()
    assert stack.scene.entities[1].transform.position == (0, 0, 0.3)
    stack.undo()
    assert stack.scene.entities[1].transform.position == (0, 0, 0)


def test_merging_stops_at_the_save_point_and_after_undo(stack):
    path = ("entities", 1, "transform", "position")
    stack.push(SetField(path, (0, 0, 0.1), merge_id="drag"))
    stack.set_clean()
    stack.push(SetField(path, (0, 0, 0.2), merge_id="drag"))
    assert len(stack) == 2
    stack.undo()
    assert stack.is_clean and stack.scene.entities[1].transform.position == (0, 0, 0.1)


def test_clean_state_follows_the_save_point(stack):
    changes = []
    stack.clean_changed.connect(changes.append)
    assert stack.is_clean
    stack.push(SetField(("name",), "a"))
    stack.push(SetField(("name",), "b"))
    stack.set_clean()
    stack.undo()
    assert not stack.is_clean
    stack.redo()
    assert stack.is_clean
    stack.undo()
    stack.push(SetField(("name",), "c"))  # the saved state "b" is gone from history
    assert not stack.is_clean
    while stack.can_undo:
        stack.undo()
        assert not stack.is_clean
    assert changes == [False, True, False, True, False]


def test_macro_is_one_step_and_nests(stack):
    stack.begin_macro("arrange")
    stack.push(SetField(("entities", 0, "color"), (1, 0, 0)))
    stack.begin_macro("inner")
    stack.push(duplicate_entity(stack.scene, "block"))
    stack.push(SetField(("entities", 2, "transform", "position", 0), 0.3))
    stack.end_macro()
    assert not stack.can_undo  # undo waits for the macro to close
    with pytest.raises(CommandError):
        stack.undo()
    stack.end_macro()
    assert len(stack) == 1 and stack.undo_text == "arrange"
    assert stack.scene.entity("block_copy").transform.position == (0.3, 0, 0)
    stack.undo()
    assert dump(stack.scene) == dump(make_scene())
    stack.redo()
    assert stack.scene.entity("block_copy").transform.position == (0.3, 0, 0)


def test_abort_macro_undoes_what_it_did(stack):
    stack.begin_macro("try")
    stack.push(SetField(("simulation", "horizon"), 5))
    stack.push(add_entity({"name": "ball", "shape": {"kind": "sphere"}}))
    stack.abort_macro()
    assert dump(stack.scene) == dump(make_scene()) and len(stack) == 0 and stack.is_clean


def test_rename_updates_references_and_undoes_as_one(stack):
    stack.push(rename_entity(stack.scene, "hand", "claw"))
    assert stack.scene.trajectory.tool == "claw"
    stack.push(rename_entity(stack.scene, "block", "cube"))
    assert stack.scene.task.loss[0].entity == "cube"
    with pytest.raises(CommandError, match="duplicate name"):
        stack.push(rename_entity(stack.scene, "cube", "table"))
    assert stack.scene.entity("cube") and stack.scene.task.loss[0].entity == "cube"
    stack.undo()
    stack.undo()
    assert dump(stack.scene) == dump(make_scene())


def test_renaming_a_sensor_renames_its_tactile_topic(stack):
    stack.push(rename_entity(stack.scene, "pad", "left_pad"))
    assert stack.scene.entity("hand").sensors[0].name == "left_pad"
    assert stack.scene.lab.tactile_topics == {"left_pad": "/tactile/pad"}
    with pytest.raises(CommandError, match="no tactile sensor"):  # a bare rename would dangle
        stack.push(SetField(("entities", 2, "sensors", 0, "name"), "right_pad"))
    stack.undo()
    assert stack.scene.lab.tactile_topics == {"pad": "/tactile/pad"}


def test_keyframes_are_inserted_in_time_order(stack):
    stack.push(add_keyframe(stack.scene, {"time": 0.5, "opening": 0.02}))
    assert [k.time for k in stack.scene.trajectory.keyframes] == [0, 0.5, 1]
    stack.push(remove_keyframe(0))
    assert [k.time for k in stack.scene.trajectory.keyframes] == [0.5, 1]
    stack.undo()
    stack.undo()
    assert dump(stack.scene) == dump(make_scene())


def test_document_events_name_the_changed_paths(stack):
    events, states = [], []
    stack.document_changed.connect(events.append)
    stack.state_changed.connect(lambda: states.append(stack.can_undo))
    stack.push(SetField(("simulation", "dt"), 5e-4))
    stack.undo()
    assert events == [[("simulation", "dt")], [("simulation", "dt")]]
    assert states == [True, False]


# ---------------------------------------------------------------- random command sequences

NAMES = ["table", "block", "hand", "pad", "ball", "cube", "claw", "block_copy", "pad_copy"]
floats = st.floats(-0.5, 2.0, allow_nan=False)


def _random_command(data, scene):
    """One edit drawn at random; many are invalid on purpose (they must be refused cleanly)."""
    n = len(scene.entities)
    kind = data.draw(st.sampled_from(
        ["move", "rotate", "modulus", "dt", "add", "remove", "duplicate", "rename", "key_add", "key_del", "key_set"]
    ))
    i = data.draw(st.integers(0, max(n - 1, 0)))
    name = scene.entities[i].name if n else "none"
    if kind == "move":
        vec = data.draw(st.tuples(floats, floats, floats))
        return SetField(("entities", i, "transform", "position"), vec, merge_id=data.draw(st.sampled_from([None, "d"])))
    if kind == "rotate":
        quat = data.draw(st.tuples(floats, floats, floats, floats))
        return SetField(("entities", i, "transform", "rotation"), quat)
    if kind == "modulus":
        return SetField(("entities", i, "material", "youngs_modulus"), data.draw(st.floats(-1e3, 1e7)))
    if kind == "dt":
        return SetField(("simulation", "dt"), data.draw(st.floats(-0.01, 0.05)), merge_id="dt")
    if kind == "add":
        new = data.draw(st.sampled_from(NAMES))
        return add_entity({"name": new, "shape": {"kind": "sphere"}}, index=data.draw(st.integers(0, n)))
    if kind == "remove":
        return remove_entity(scene, name)
    if kind == "duplicate":
        return duplicate_entity(scene, name)
    if kind == "rename":
        old = data.draw(st.sampled_from(scene.all_names())) if n else "none"
        return rename_entity(scene, old, data.draw(st.sampled_from(NAMES)))
    frames = len(scene.trajectory.keyframes)
    if kind == "key_add":
        return add_keyframe(scene, {"time": data.draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]))})
    if kind == "key_del":
        return remove_keyframe(data.draw(st.integers(0, frames)))
    return set_keyframe(data.draw(st.integers(0, max(frames - 1, 0))), {"time": data.draw(st.floats(0, 3))})


def _push(stack, command):
    before = dump(stack.scene)
    try:
        stack.push(command)
    except CommandError:
        assert dump(stack.scene) == before  # a refused edit leaves no trace
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_sequences_undo_to_the_original_and_redo_to_the_edit(data):
    stack = UndoStack(make_scene())
    original = dump(stack.scene)
    for _ in range(data.draw(st.integers(1, 25))):
        if data.draw(st.integers(0, 5)) == 0:
            stack.begin_macro("macro")
            for _ in range(data.draw(st.integers(1, 3))):
                _push(stack, _random_command(data, stack.scene))
            stack.end_macro()
        else:
            _push(stack, _random_command(data, stack.scene))
        if data.draw(st.integers(0, 7)) == 0 and stack.can_undo:
            stack.undo()  # undo in the middle, so later pushes cut the redo branch
    edited = dump(stack.scene)
    steps = stack.index
    while stack.can_undo:
        stack.undo()
    assert dump(stack.scene) == original and stack.is_clean
    for _ in range(steps):
        stack.redo()
    assert dump(stack.scene) == edited
    assert Scene.model_validate(edited).reference_problems() == []
