"""mpmmu: read a mammogram and a breast ultrasound together with the MPM-MU model.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

__version__ = "0.1.0"

RESEARCH_USE_STATEMENT = "Research use only, not for clinical diagnosis."
