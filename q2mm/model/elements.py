"""Element data: symbols, atomic numbers, monoisotopic masses, covalent radii."""

from __future__ import annotations

# Tables kept as rows by the formatter.
# fmt: off
SYMBOLS = (
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd",
    "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
)
ATOMIC_NUMBER = {s.upper(): z for z, s in enumerate(SYMBOLS)}

# Monoisotopic masses (most abundant isotope), as QM programs use for frequencies.
MONOISOTOPIC_MASS = {
    "H": 1.00782503, "B": 11.0093054, "C": 12.0, "N": 14.0030740, "O": 15.9949146,
    "F": 18.9984032, "Si": 27.9769265, "P": 30.9737620, "S": 31.9720707, "Cl": 34.9688527,
    "Fe": 55.9349375, "Co": 58.9331950, "Ni": 57.9353429, "Cu": 62.9295975, "Zn": 63.9291422,
    "Br": 78.9183371, "Ru": 101.9043493, "Rh": 102.9055040, "Pd": 105.9034860,
    "Ag": 106.9050970, "I": 126.9044730, "Ir": 192.9629264, "Pt": 194.9647911,
}

# Single-bond covalent radii in Angstrom (Cordero et al., Dalton Trans. 2008, 2832).
COVALENT_RADIUS = {
    "H": 0.31, "B": 0.84, "C": 0.76, "N": 0.71, "O": 0.66, "F": 0.57, "Si": 1.11, "P": 1.07,
    "S": 1.05, "Cl": 1.02, "Fe": 1.32, "Co": 1.26, "Ni": 1.24, "Cu": 1.32, "Zn": 1.22,
    "Br": 1.20, "Ru": 1.46, "Rh": 1.42, "Pd": 1.39, "Ag": 1.45, "I": 1.39, "Ir": 1.41,
    "Pt": 1.36,
}
# fmt: on


def normalize_symbol(symbol: str) -> str:
    """'RH', 'rh' or 'Rh1' -> 'Rh'. Raises KeyError for an unknown element."""
    letters = "".join(ch for ch in symbol if ch.isalpha())
    z = ATOMIC_NUMBER[letters.upper()]
    return SYMBOLS[z]


def symbol_from_number(z: int) -> str:
    """Atomic number -> element symbol."""
    return SYMBOLS[z]


def mass(symbol: str) -> float:
    """Monoisotopic mass of an element in amu."""
    return MONOISOTOPIC_MASS[normalize_symbol(symbol)]
