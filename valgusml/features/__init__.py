"""Biomechanical measures from keypoints (2D and 3D)."""

from valgusml.features.geometry import as_frontal_2d, fppa_deg, frontal_projection

__all__ = ["as_frontal_2d", "fppa_deg", "frontal_projection"]
