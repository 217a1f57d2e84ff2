"""Constitution Studio backend: settings, errors, CAI core, services."""
