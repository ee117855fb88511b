"""Installs priorax; exact versions live in constraints.txt (pip install -c constraints.txt)."""

import setuptools

setuptools.setup(
    name="priorax",
    version="0.1.0",
    description="JAX reinforcement learning with behaviour priors (Acme-style actors, learners, Reverb).",
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=["priorax", "priorax.*"]),
    install_requires=[
        "chex",
        "distrax",
        "dm-control",
        "dm-env",
        "dm-haiku",
        "dm-reverb",
        "dm-tree",
        "imageio",
        "imageio-ffmpeg",
        "jax",
        "jaxlib",
        "matplotlib",
        "mujoco",
        "numpy",
        "optax",
        "ray",
        "rlax",
        "scikit-learn",
        "tensorflow-cpu",
        "tensorflow-probability",
    ],
    extras_require={"test": ["pytest", "pytest-timeout"]},
    entry_points={"console_scripts": ["priorax=priorax.launchers.cli:main"]},
)
