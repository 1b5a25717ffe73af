"""Training: stage 1 fine-tunes each modality's branch; stage 2 fits the fused ensemble."""

from __future__ import annotations
