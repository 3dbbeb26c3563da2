"""`fedzo boards`."""
