"""Plain in-memory data: molecules, elements, units (force fields live in forcefield.py)."""
