"""Schedulers of the concurrent-labs problem (the paper's and synthetic ones)."""
