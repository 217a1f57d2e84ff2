"""The floor under services, jobs and training: what more than one of them needs, in one place.

Modules here import only ``backend.cai``, ``backend.engines``, ``backend.errors``, the leaf
modules of ``backend`` and ``db`` — never ``backend.services``, ``backend.jobs`` or
``backend.training`` — so every layer above may import them.
"""
