"""Pipeline stages: each a plain ``run(cfg, tracker) -> dict`` on paths under ``cfg.out_dir``, one
module per stage. The stage table (``cgankd.pipeline.spec``) declares them; the CLI, dvc.yaml
(through the CLI) and the Prefect flow all call these functions. A stage imports no other stage."""
