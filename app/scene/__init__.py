"""The scene document and its files.

Models live in ``app.scene.model`` (``Scene``, ``Body``, ``Gripper``, ``TactileSensor``, shapes,
materials, ``Trajectory``, ``Task``, ``Simulation``, ``Lab``); file I/O, migrations and path rules
in ``app.scene.io``, ``app.scene.migrations`` and ``app.scene.paths``.
"""

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

__all__ = [
    "SCHEMA_VERSION", "Body", "BoxShape", "CapsuleShape", "ClothShape", "CylinderShape", "DynamicRigid",
    "FemElastic", "Gripper", "Keyframe", "KinematicRigid", "Lab", "LossTerm", "MarkerPattern", "MeshShape",
    "MpmElastic", "MpmElastoplastic", "MpmFluid", "OptimizerSettings", "Scene", "SerialLink", "Simulation",
    "SphereShape", "TactileSensor", "Task", "ThinShell", "Trajectory", "Transform", "UrdfShape", "field_unit",
]
