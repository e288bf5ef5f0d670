"""The math: one module per operation, each a ``forward``/``backward`` pair of pure functions
of NumPy arrays, computed by ``@njit`` kernels. No state, no classes, no imports from nn."""
