"""The learning core: what every replica computes identically (SPEC 2-5)."""
