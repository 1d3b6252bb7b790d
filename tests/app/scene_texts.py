"""A small valid scene text whose line numbers the damaged-file tests rely on."""

BASE = """\
schema_version: 2
name: base
entities:
  - name: table
    shape: {kind: box, size: [1.0, 1.0, 0.05]}
  - name: block
    shape: {kind: box, size: [0.05, 0.05, 0.05]}
    material: {kind: fem_elastic, density: 1000.0, youngs_modulus: 1.0e+5, poisson_ratio: 0.3}
    transform: {position: [0, 0, 0.15]}
  - name: sheet
    shape: {kind: cloth, size: [0.2, 0.2], resolution: [8, 8]}
    material: {kind: shell, thickness: 0.001}
  - name: mug
    shape: {kind: mesh, path: meshes/mug.obj}
  - type: gripper
    name: hand
    sensors:
      - {name: pad, finger: left}
trajectory:
  tool: hand
  keyframes:
    - {time: 0.0, position: [0, 0, 0.2]}
    - {time: 0.5, position: [0, 0, 0.1]}
simulation:
  dt: 0.001
  horizon: 100
"""
