"""``cgankd``: one subcommand per stage, plus run / repro / sweeps / registry / serving / data tools."""

from __future__ import annotations

import os
import sys

from cgankd.base.errors import CgankdError
from cgankd.base.install import install_hint
from cgankd.cli.parser import parser


def main(argv: list[str] | None = None) -> int:
    from cgankd.ops.tracking import quiet_telemetry

    quiet_telemetry()
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except CgankdError as exc:
        print(f"cgankd: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full disk or an unwritable folder outside cgankd's own writes (MLflow, DVC)
        from cgankd.base.io import WRITE_ERRORS

        if exc.errno not in WRITE_ERRORS:
            raise
        print(f"cgankd: error: {exc.filename or 'a write'}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cgankd: interrupted (checkpoints kept; re-run to resume)", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:  # an install without this command's extra (pyproject.toml)
        extra = EXTRA_OF.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"cgankd: error: {args.command} needs {exc.name}, which is not installed: "
              f"{install_hint(extra)} (docs/install.md)", file=sys.stderr)
        return 2


# the extra (pyproject.toml) that brings each optional top-level module


EXTRA_OF = {**dict.fromkeys(("torch", "torchvision", "onnx", "onnxscript"), "train"),
            **dict.fromkeys(("onnxruntime", "fastapi", "uvicorn", "multipart", "prometheus_client"), "serve"),
            **dict.fromkeys(("mlflow", "dvc", "prefect", "sqlalchemy", "httpx", "matplotlib"), "track"),
            **dict.fromkeys(("dask", "distributed", "prefect_dask", "psycopg2"), "scale"),
            **dict.fromkeys(("h5py", "sklearn"), "data")}


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
