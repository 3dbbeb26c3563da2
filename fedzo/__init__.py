"""fedzo: federated RLHF on edge devices with Par-S²ZPO.

One import namespace over the project's folders (pyproject.toml maps them):

    fedzo                the command line (`fedzo.cli`) and the bench command
    fedzo.edge           edge/: the kernel binding, the learning core, the
                         policy and tasks, the protocol, the agent and its links
    fedzo.coordinator    coordinator/: rounds, runs, transports, analysis, tools
    fedzo.firmware_sim   firmware_sim/: simulated boards on pseudo-terminal lines

The edge side never imports the coordinator side; docs/ARCHITECTURE.md has
the picture.
"""

__version__ = "0.1.0"
