"""Running on a Ray cluster (optional: `pip install 'fedzo[ray]'`).

One job per module:

    connect.py      import Ray (a clear error if it is missing), join a cluster or start a local one
    code_check.py   a digest of fedzo's source, so a node with other code refuses work
    cell_files.py   a run folder's files as bytes, and writing them back on the driver
    grid.py         `fedzo experiment --ray`: each cell a Ray task, results written by the driver
    progress.py     the grid's progress line (done / running / failed / time left)
    agent_host.py   a Ray actor holding several agents' runtimes and their protocol ends
    ray_link.py     `fedzo simulate --link ray`: the coordinator driving agents in actors

Nothing under edge/ imports this package: an agent board never needs Ray.
"""
