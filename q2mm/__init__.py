"""q2mm: fit transition-state force fields (MacroModel MM3*) to quantum-chemistry data."""

__version__ = "0.1.0"
