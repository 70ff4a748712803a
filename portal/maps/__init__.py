"""maps (issue 17): see the module docstrings."""
