"""Users and roles (issue 6; migration 0006)."""

from __future__ import annotations
