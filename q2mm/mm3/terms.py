"""MM3* valence terms as MacroModel evaluates them: pure, vectorized JAX (float64), kcal/mol.

Every function takes arrays with one entry per interaction and returns per-interaction
energies; the engine sums them. Geometry is measured on MacroModel's working coordinates
(hydrogens moved toward their parent atom, see :func:`reduce_hydrogens`); bond lengths are
scaled back by the hydrogens' reduction factors, so an X-H bond to the parent keeps its
nuclear length. Angles and dihedrals use atan2 only, so gradients stay finite at 0 and 180
degrees. Constants are MacroModel's `-1` table factors divided by 4.184 (kJ -> kcal).
"""

from __future__ import annotations

import jax.numpy as jnp

import q2mm.jaxconfig  # noqa: F401  (float64 before any JAX work)

KJ_PER_KCAL = 4.184
MDYN_A_TO_KCAL = 143.88  # MM3's mdyn/A -> kcal/mol/A^2 (STR factor 601.99392 kJ = 2 x 71.94 x 4.184)
STRETCH_CUBIC = 2.55  # 1/A
STRETCH_QUARTIC = 7.0 / 12.0 * STRETCH_CUBIC**2
BEND_FACTOR = 0.5 * MDYN_A_TO_KCAL * (jnp.pi / 180.0) ** 2  # 0.021914 kcal/mol/deg^2 per mdyn A/rad^2
BEND_POLY = (-0.014, 5.6e-5, -7.0e-7, 2.2e-8)  # MM3 sextic bend, degrees
STRETCH_BEND_FACTOR = MDYN_A_TO_KCAL * jnp.pi / 180.0  # 2.51118
TORSION_STRETCH_FACTOR = 5.9975  # MM3 stretch-torsion, kcal/mol/A per (kcal/mol/A) Kts
OUT_OF_PLANE_FACTOR = 60.19939 / KJ_PER_KCAL  # IMP factor of the -1 table, per kcal/mol k
_EPS = 1e-300


def reduce_hydrogens(x: jnp.ndarray, parent: jnp.ndarray, factor: jnp.ndarray) -> jnp.ndarray:
    """MacroModel's working coordinates: x'_i = x_parent + f_i (x_i - x_parent).

    ``parent[i] = i`` and ``factor[i] = 1`` leave atom i where it is (every non-hydrogen).
    """
    anchor = x[parent]
    return anchor + factor[:, None] * (x - anchor)


def _norm(v: jnp.ndarray) -> jnp.ndarray:
    return jnp.sqrt(jnp.sum(v * v, axis=-1) + _EPS)


# -- geometry of points (..., 3): one interaction or a batch, the same arithmetic either way --
def bond_length(a: jnp.ndarray, b: jnp.ndarray, fa: jnp.ndarray, fb: jnp.ndarray) -> jnp.ndarray:
    """Bond length a-b in A from working coordinates, divided by the reduction factors fa fb."""
    return _norm(a - b) / (fa * fb)


def angle_deg(a: jnp.ndarray, centre: jnp.ndarray, c: jnp.ndarray) -> jnp.ndarray:
    """Angle a-centre-c in degrees via atan2(|u x v|, u.v) (finite gradients at 0 and 180)."""
    u = a - centre
    v = c - centre
    return jnp.degrees(jnp.arctan2(_norm(jnp.cross(u, v)), jnp.sum(u * v, axis=-1)))


def dihedral_rad(p0: jnp.ndarray, p1: jnp.ndarray, p2: jnp.ndarray, p3: jnp.ndarray) -> jnp.ndarray:
    """Dihedral angle p0-p1-p2-p3 in radians, in MacroModel's sign convention."""
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1 = jnp.cross(b0, b1)
    n2 = jnp.cross(b1, b2)
    m = jnp.cross(n1, b1 / _norm(b1)[..., None])
    return -jnp.arctan2(jnp.sum(m * n2, axis=-1), jnp.sum(n1 * n2, axis=-1))


# -- the same on atom index arrays -------------------------------------------------------------
def bond_lengths(xr: jnp.ndarray, factor: jnp.ndarray, pairs: jnp.ndarray) -> jnp.ndarray:
    """Bond lengths in A from working coordinates, divided by the atoms' reduction factors."""
    i, j = pairs[..., 0], pairs[..., 1]
    return bond_length(xr[i], xr[j], factor[i], factor[j])


def angles_deg(x: jnp.ndarray, triples: jnp.ndarray) -> jnp.ndarray:
    """Angles i-j-k in degrees (see :func:`angle_deg`)."""
    return angle_deg(x[triples[..., 0]], x[triples[..., 1]], x[triples[..., 2]])


def dihedrals_rad(x: jnp.ndarray, quads: jnp.ndarray) -> jnp.ndarray:
    """Dihedral angles i-j-k-l in radians, in MacroModel's sign convention."""
    return dihedral_rad(*(x[quads[..., n]] for n in range(4)))


def stretch(r: jnp.ndarray, r0: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    """MM3 anharmonic stretch: 71.94 k dr^2 (1 - 2.55 dr + (7/12) 2.55^2 dr^2)."""
    dr = r - r0
    return 0.5 * MDYN_A_TO_KCAL * k * dr * dr * (1.0 - STRETCH_CUBIC * dr + STRETCH_QUARTIC * dr * dr)


def bend(theta: jnp.ndarray, theta0: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    """MM3 sextic bend: 0.021914 k d^2 (1 - 0.014 d + 5.6e-5 d^2 - 7e-7 d^3 + 2.2e-8 d^4), d in deg."""
    d = theta - theta0
    c3, c4, c5, c6 = BEND_POLY
    poly = 1.0 + d * (c3 + d * (c4 + d * (c5 + d * c6)))
    return BEND_FACTOR * k * d * d * poly


def stretch_bend(dr1: jnp.ndarray, dr2: jnp.ndarray, dtheta: jnp.ndarray, ksb: jnp.ndarray) -> jnp.ndarray:
    """Stretch-bend, one Ksb: 2.51118 Ksb (dr1 + dr2) dtheta (dtheta in degrees)."""
    return STRETCH_BEND_FACTOR * ksb * (dr1 + dr2) * dtheta


def bend_bend(dtheta1: jnp.ndarray, dtheta2: jnp.ndarray, kbb: jnp.ndarray) -> jnp.ndarray:
    """MM3 bend-bend of two angles at one centre: -0.021914 Kbb dtheta1 dtheta2 (degrees)."""
    return -BEND_FACTOR * kbb * dtheta1 * dtheta2


def torsion(omega: jnp.ndarray, v: jnp.ndarray) -> jnp.ndarray:
    """Cosine torsion with V1..V6 in v[..., 0:6] (kcal/mol), MM3 sign pattern.

    V1/2 (1 + cos w) + V2/2 (1 - cos 2w) + V3/2 (1 + cos 3w) + V4/2 (1 - cos 4w) + ...
    """
    n = jnp.arange(1, v.shape[-1] + 1, dtype=omega.dtype)
    sign = jnp.where(n % 2 == 1, 1.0, -1.0)
    return 0.5 * jnp.sum(v * (1.0 + sign * jnp.cos(n * omega[..., None])), axis=-1)


def torsion_stretch(omega: jnp.ndarray, dr_central: jnp.ndarray, kts: jnp.ndarray) -> jnp.ndarray:
    """MM3 stretch-torsion: -5.9975 Kts dr_c (1 + cos 3w), dr_c the central bond's stretch."""
    return -TORSION_STRETCH_FACTOR * kts * dr_central * (1.0 + jnp.cos(3.0 * omega))


def out_of_plane(omega: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
    """Cosine mimic of harmonic out-of-plane bending: 14.388 k (1 - cos 2w), w the improper dihedral."""
    return OUT_OF_PLANE_FACTOR * k * (1.0 - jnp.cos(2.0 * omega))
