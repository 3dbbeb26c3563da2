"""fedzo.edge: everything an agent needs, and the core the coordinator shares.

Read it in the order of the data flow (seed -> bits -> perturb -> rollouts ->
preference -> vote -> update):

    kernel/     the C kernel's Python face and its NumPy twin: shared-seed bits,
                perturb / restore / update, quantisation
    learning/   the learning core: stream ids, the fixed-point store, the block
                layout, the algorithm's arithmetic, preference sources, the run
                config and one agent's round (agent_logic)
    policy/     the 64-64 tanh MLP, saved actors (actors/*.npz) and rollouts
    tasks/      hopper, halfcheetah, walker2d, swimmer on the raw mujoco bindings
    protocol/   the wire protocol, sans I/O: messages, sessions, framing, ARQ
    links/      byte links both sides use: serial (pyserial + ARQ), TCP_INFO
    agent/      the agent's protocol state machine and its TCP and serial loops
    bench/      `fedzo bench kernel` and `fedzo bench rollout`
    commands/   `fedzo agent` and `fedzo info`

Nothing here imports fedzo.coordinator or fedzo.firmware_sim.
"""
