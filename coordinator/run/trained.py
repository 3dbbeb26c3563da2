"""A run folder's trained theta, for the tools that look at it (`fedzo eval --run`,
`fedzo calibrate --accuracy --run`): the run's config and its last checkpoint."""
from pathlib import Path

from fedzo.coordinator.run.folder import CONFIG, RunFolder
from fedzo.edge.learning.config import RunConfig
from fedzo.edge.learning.fixedpoint import FixedPoint, ParameterStore


class NotARunFolder(ValueError):
    """The folder has no config.json."""


def load_trained(folder) -> tuple:
    """(config, store holding the checkpoint's theta, the checkpoint's next round).

    Raises NotARunFolder, or FileNotFoundError / ValueError / ConfigError / OSError
    with a message naming the file."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file():
        raise NotARunFolder(f"{folder} is not a run folder (no {CONFIG})")
    run_folder = RunFolder(folder, create=False)
    config = RunConfig.from_dict(run_folder.read_json(CONFIG))
    checkpoint = run_folder.load_checkpoint()
    values = checkpoint["values"]
    store = ParameterStore(values, FixedPoint(values.dtype, checkpoint["frac_bits"]))
    return config, store, checkpoint["next_round"]
