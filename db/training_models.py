"""Datasets made by training stages: SL-CAI samples linked to the critiques and principles
that produced them (issue 5; migration 0007)."""

from __future__ import annotations
