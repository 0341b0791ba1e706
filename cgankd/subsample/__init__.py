"""cDR-RS: conditional density-ratio estimation in a feature space + rejection sampling."""
