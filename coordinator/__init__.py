"""fedzo.coordinator: the server side. It imports the shared core from fedzo.edge.

    rounds/       the round state machine (joins, votes, aggregation, syncs)
    run/          one run: evaluation, metrics, checkpoints, the run folder, the summary
    transports/   the server loop (TCP and serial), loopback TCP agents, in-process agents
    analysis/     experiment grids, reports and the paper's claims
    tools/        pretraining, panel calibration, the link bench
    commands/     simulate, coordinator, experiment, report, calibrate, pretrain, eval
"""
