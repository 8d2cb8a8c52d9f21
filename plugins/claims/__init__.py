"""The paper's claims as checked verdicts (``gbench claims``): see docs/science.md §6."""
