"""Feature extractors trained on the real data: the space cDR-RS and the quality metrics use."""
