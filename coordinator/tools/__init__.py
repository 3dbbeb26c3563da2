"""Tools around runs: ARS pretraining, panel calibration, the link bench."""
