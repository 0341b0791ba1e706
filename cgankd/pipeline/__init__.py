"""The pipeline wing: the stage table, the runner (`cgankd run`), dvc.yaml generation."""
