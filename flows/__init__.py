"""The Prefect flows of cgankd, installed with the package (``flows.pipeline``, ``flows.compare``,
``flows.ablation``, ``flows.promote``). Each is thin: it calls the same stage or sweep function as the
CLI and ``dvc.yaml``. ``prefect.yaml`` at the project's root declares their deployments; ``flows.deploy``
serves the same deployments from one process when there is no work pool."""
