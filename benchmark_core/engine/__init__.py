"""The engine: selection, the grid, the one training loop and the executors that run it."""
