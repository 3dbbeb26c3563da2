"""One run of the coordinator: evaluation, metrics, checkpoints and the run folder."""
