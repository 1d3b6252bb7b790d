"""Compile a scene document into the simulator's immutable world spec (see compile_scene)."""

from app.compile.world import CompiledScene, compile_scene

__all__ = ["CompiledScene", "compile_scene"]
