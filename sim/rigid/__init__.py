"""Rigid shapes seen by the volumetric systems through signed distances."""
