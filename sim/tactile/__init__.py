"""Tactile outputs of FEM pads: markers, forces, depth map and a photometric image."""
