"""Data: the procedural object renderer, embedded data sets, loaders and the prepared format."""
