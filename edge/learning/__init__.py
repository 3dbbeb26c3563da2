"""The learning core: what every replica computes identically (DESIGN.md §2 to §5)."""
