"""Sweeps as jobs: local and Dask runners, method comparison, ablation and their reports."""
