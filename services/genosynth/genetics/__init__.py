"""Shared statistical-genetics array functions: pure numpy on plain arrays, shapes in the docstrings."""
