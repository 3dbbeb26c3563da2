"""The policy: the 64-64 tanh MLP, its saved-actor files and rollouts."""
