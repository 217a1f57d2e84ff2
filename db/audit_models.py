"""Flags and comments on critique-log records; the FTS index is hand-written SQL in migration
0005 (issue 6)."""

from __future__ import annotations
