"""A person gives the preferences: clips of both batches, a page on the agent, recorded answers."""
