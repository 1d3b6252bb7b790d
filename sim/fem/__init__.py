"""Tetrahedral FEM: mesh generators for tactile pads and soft bodies, and the explicit
stable Neo-Hookean solver they share."""
