"""The scene document and its files.

Models live in ``app.scene.model`` (``Scene``, ``Body``, ``Gripper``, ``TactileSensor``, shapes,
materials, ``Trajectory``, ``Task``, ``Simulation``, ``Lab``); file I/O, migrations and path rules
in ``app.scene.io``, ``app.scene.migrations`` and ``app.scene.paths``. The everyday API is
re-exported here: ``load_scene``, ``save_scene``, ``scene_from_text``, ``scene_to_text``,
``SceneError``, ``default_scene_path``, ``assets_root``, ``resolve_asset``.
"""

from app.scene.io import SceneError, load_scene, save_scene, scene_from_text, scene_to_text
from app.scene.model import (
    SCHEMA_VERSION,
    Body,
    BoxShape,
    CapsuleShape,
    ClothShape,
    CylinderShape,
    DynamicRigid,
    FemElastic,
    Gripper,
    Keyframe,
    KinematicRigid,
    Lab,
    LossTerm,
    MarkerPattern,
    MeshShape,
    MpmElastic,
    MpmElastoplastic,
    MpmFluid,
    OptimizerSettings,
    Scene,
    SerialLink,
    Simulation,
    SphereShape,
    TactileSensor,
    Task,
    ThinShell,
    Trajectory,
    Transform,
    UrdfShape,
    field_unit,
)
from app.scene.paths import AssetPathError, assets_root, default_scene_path, resolve_asset

__all__ = [
    "SCHEMA_VERSION", "Body", "BoxShape", "CapsuleShape", "ClothShape", "CylinderShape", "DynamicRigid",
    "FemElastic", "Gripper", "Keyframe", "KinematicRigid", "Lab", "LossTerm", "MarkerPattern", "MeshShape",
    "MpmElastic", "MpmElastoplastic", "MpmFluid", "OptimizerSettings", "Scene", "SerialLink", "Simulation",
    "SphereShape", "TactileSensor", "Task", "ThinShell", "Trajectory", "Transform", "UrdfShape", "field_unit",
    "SceneError", "load_scene", "save_scene", "scene_from_text", "scene_to_text",
    "AssetPathError", "assets_root", "default_scene_path", "resolve_asset",
]
