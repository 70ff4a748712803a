"""The subset tests' published synthetic grid, for downloads of a dataset whose access rule a test sets."""
from ..subsets.conftest import grid_version, live_grid  # noqa: F401
