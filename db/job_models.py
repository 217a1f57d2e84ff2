"""Training jobs, their metric points and artifacts (issue 5; migration 0004)."""

from __future__ import annotations
