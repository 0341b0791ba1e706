"""Helpers every layer may use: errors, registries, atomic files, progress, fault points, locks, figures."""
