"""csood: sparse coding vs sparse autoencoders under compositional shift."""

__version__ = "0.1.0"
