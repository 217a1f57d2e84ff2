"""Storage: SQLModel tables, engine/session factory, repositories, migrations.

This package imports nothing from ``backend`` or ``studio``.
"""
