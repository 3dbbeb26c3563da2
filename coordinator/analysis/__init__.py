"""Experiment grids, their reports and the verdicts on the paper's claims."""
