"""Backend contract suite: written once, run against every backend."""
