"""Supervised training of teachers and students (classification and regression)."""
