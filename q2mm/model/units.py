"""Physical constants and unit conversions. Readers convert once; everything else uses these.

Internal units: coordinates in Angstrom, QM Hessians in Hartree/Bohr^2, QM energies in
Hartree, MM energies in kcal/mol (MacroModel prints kJ/mol), force constants as in the .fld.
"""

BOHR_IN_ANGSTROM = 0.529177210903
HARTREE_IN_KCAL_PER_MOL = 627.5094740631
KCAL_IN_KJ = 4.184
HARTREE_IN_KJ_PER_MOL = HARTREE_IN_KCAL_PER_MOL * KCAL_IN_KJ

# Hessian conversions
KCAL_PER_MOL_A2_TO_HARTREE_BOHR2 = BOHR_IN_ANGSTROM**2 / HARTREE_IN_KCAL_PER_MOL
HARTREE_BOHR2_TO_KJ_PER_MOL_A2 = HARTREE_IN_KJ_PER_MOL / BOHR_IN_ANGSTROM**2  # 9375.83
HARTREE_BOHR2_TO_MDYN_A = 15.569141  # 1 Hartree/Bohr^2 in mdyn/A
MDYN_A_IN_KCAL_PER_MOL_A2 = 143.9325  # 1 mdyn/A = 143.9325 kcal/mol/A^2 (MM3 uses 143.88)

# Frequencies: sqrt(eigenvalue in Hartree/(Bohr^2 amu)) -> cm^-1
HARTREE_BOHR2_AMU_TO_CM1 = 5140.4871  # sqrt(E_h / (a0^2 u)) / (2 pi c) in cm^-1

# Bond dipole (Debye) to charge (e) over a bond of r0 Angstrom: q = mu / (c r0). c = 4.8030
# reproduces MacroModel's printed pair energies of the six rh-enamide structures to 0.002 kJ/mol
# each; the CODATA 4.8032 leaves a systematic 1e-4 relative error (q2mm/mm3/charges.py).
DEBYE_PER_E_ANGSTROM = 4.8030
