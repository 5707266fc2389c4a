"""A Lennard-Jones cluster: forces as the gradient of the energy, relaxation to the minimum,
and the vibrational modes from the Hessian.

Four atoms relax to a regular tetrahedron with energy -6 (in units of epsilon); the Hessian
there has six zero modes (translations and rotations) and six positive ones.
"""

import numpy as np

import symgrad as sg


def energy(positions):
    diff = positions[:, None, :] - positions[None, :, :]
    r2 = (diff**2).sum(-1) + sg.eye(positions.shape[0], dtype=sg.float64)  # no self-interaction
    inv6 = r2 ** (-3)
    pair = 4 * (inv6 * inv6 - inv6)
    mask = 1 - sg.eye(positions.shape[0], dtype=sg.float64)
    return 0.5 * (pair * mask).sum()


forces = sg.grad(energy)  # the force is minus this gradient
hessian = sg.hessian(lambda flat: energy(flat.reshape(4, 3)))

rng = np.random.default_rng(1)
x = np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [0.5, 1.0, 0.0], [0.5, 0.4, 0.9]])
x += 0.05 * rng.standard_normal(x.shape)
for step in range(20000):  # noqa: B007 - reported below
    g = forces(x)
    x = x - 0.003 * g  # below 2 / (largest curvature), so plain descent converges
    if np.abs(g).max() < 1e-10:
        break
e = float(sg.compile(energy)(x))
print(f"relaxed in {step} steps: energy {e:.8f}, largest force {np.abs(g).max():.2e}")
assert abs(e + 6.0) < 1e-8

distances = np.linalg.norm(x[:, None] - x[None], axis=-1)[np.triu_indices(4, 1)]
print("pair distances:", np.round(distances, 6), "(2**(1/6) =", round(2 ** (1 / 6), 6), ")")
assert np.allclose(distances, 2 ** (1 / 6), atol=1e-6)

H = hessian(x.reshape(-1))
modes = np.linalg.eigvalsh(H)
print("Hessian eigenvalues:", np.round(modes, 4))
assert np.allclose(H, H.T, atol=1e-9)
assert (np.abs(modes) < 1e-6).sum() == 6 and (modes[6:] > 1).all()
print("six zero modes (rigid motions), six vibrations; frequencies:", np.round(np.sqrt(modes[6:]), 4))
