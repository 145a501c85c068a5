"""Fidelity and privacy of a synthetic cohort against the real one, and the privacy gate."""
