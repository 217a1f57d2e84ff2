"""The Constitutional AI core: pure functions over constitutions (and, later, engines)."""
