"""The operations wing: MLflow runs, the model registry, its backlog, promotion, the UI view, the team stack."""
