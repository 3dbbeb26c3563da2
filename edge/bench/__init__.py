"""Benchmarks of the agent's hot paths, reported as ratios taken in the same run."""
