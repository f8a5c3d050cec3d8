"""Install onnxruntime in a notebook where Kaggle's image lacks it (both notebooks import this).

`ONNXRUNTIME_VERSION` is the one place the version lives: requirements.txt pins the same (a test
checks) and the builder fetches the wheels of this version for the offline inference notebook.
"""

from __future__ import annotations

import importlib
import site
import subprocess
import sys
from pathlib import Path

# The version tested here (requirements.txt pins the same); cp312 manylinux wheels exist.
ONNXRUNTIME_VERSION = "1.32.0"


def ensure_onnxruntime(wheels_dir: str | Path | None, allow_download: bool = False) -> str:
    """Import onnxruntime, installing it first if missing; its version.

    Kaggle's image has no onnxruntime and the scoring run has no internet: the wheels come from
    an attached dataset (`wheels_dir`). `allow_download` (the training notebook, internet on)
    falls back to PyPI. `--no-deps` keeps the image's numpy/protobuf in place.
    """
    try:
        return importlib.import_module("onnxruntime").__version__
    except ImportError:
        pass
    folder = Path(wheels_dir) if wheels_dir is not None else None
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check"]
    if folder is not None and any(folder.glob("onnxruntime-*.whl")):
        packages = ["onnxruntime"] + (
            ["flatbuffers"] if any(folder.glob("flatbuffers-*.whl")) else []
        )
        command += ["--no-index", "--find-links", str(folder), *packages]
    elif allow_download:
        command += [f"onnxruntime=={ONNXRUNTIME_VERSION}", "flatbuffers"]
    elif folder is None or not folder.is_dir():
        raise RuntimeError(
            f"onnxruntime is not installed and the wheels folder {folder} does not exist. Fix: "
            "attach the onnxruntime wheels dataset (built by build_kernels.py --wheels) to the "
            "notebook, or pip install onnxruntime where internet is allowed."
        )
    else:
        raise RuntimeError(f"onnxruntime is not installed and {folder} holds no onnxruntime wheel")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"installing onnxruntime ({' '.join(command[6:])}) failed:\n{done.stderr[-2000:]}"
        )
    user_site = site.getusersitepackages()  # a read-only site-packages makes pip install there
    if Path(user_site).is_dir() and user_site not in sys.path:
        site.addsitedir(user_site)
    importlib.invalidate_caches()
    return importlib.import_module("onnxruntime").__version__
