"""validation (issue 17): see the module docstrings."""
