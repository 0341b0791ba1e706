"""Fake-sample processing: generate, filter with the teacher, adjust labels."""
