"""The JSON Schema of scene files, as ``deft schema`` prints it."""

from __future__ import annotations

from typing import Any

from app.scene.model import SCHEMA_VERSION, Scene


def scene_json_schema() -> dict[str, Any]:
    schema = Scene.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"Deft scene, schema_version {SCHEMA_VERSION}"
    schema["description"] = (
        "A Deft scene file (YAML). SI units throughout; each quantity's unit is in its \"unit\" "
        "and description. Asset paths are relative to the scene file's folder or to assets/."
    )
    return schema
