"""Run inside a Kaggle-like Python 3.12 venv by tests/test_kaggle_python.py (not a test itself).

Does what the inference notebook does, in its order: numpy already imported, then the install
cell's own code (`lib/onnxruntime_setup.py`, executed from its file as the notebook inlines it,
not imported from the repository), then an onnxruntime session made with the options of
`lib.infer.make_session` on an exported fold. Prints one JSON report as the last stdout line.

Only the standard library and numpy may be imported here: that is all the venv holds.

usage: python kaggle_python_probe.py SETUP_PY WHEELS_DIR MODEL_ONNX MEL_NPY OUT_NPY
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import runpy
import socket
import sys


def installed() -> list[str]:
    """The normalised names of every distribution this interpreter sees."""
    names = (dist.metadata["Name"] for dist in importlib.metadata.distributions())
    return sorted({name.lower().replace("_", "-") for name in names if name})


def network_reachable() -> bool:
    """Whether a TCP connection to the internet opens (it must not: Kaggle scores offline)."""
    try:
        socket.create_connection(("1.1.1.1", 443), timeout=3).close()
    except OSError:
        return False
    return True


def main(setup_py: str, wheels_dir: str, model: str, mel_npy: str, out_npy: str) -> dict:
    import numpy as np  # imported before the install cell, as in the notebook

    report = {
        "python": sys.version.split()[0],
        "numpy_before": (np.__version__, np.__file__),
        "onnxruntime_before": importlib.util.find_spec("onnxruntime") is not None,
        "installed_before": installed(),
        "network_reachable": network_reachable(),
    }
    setup = runpy.run_path(setup_py)  # the module's own code, standalone like the inlined cell
    report["ensure_returned"] = setup["ensure_onnxruntime"](wheels_dir)

    import onnxruntime as ort

    report["onnxruntime"] = (ort.__version__, ort.__file__)
    report["installed_after"] = installed()
    report["numpy_after"] = (np.__version__, np.__file__)

    options = ort.SessionOptions()  # lib.infer.make_session's options, without the shared arena
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    report["io"] = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    mel = np.load(mel_npy)  # (batch, 1, n_mels, frames)
    probs = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: mel})[0]
    np.save(out_npy, probs)  # (batch, classes)
    return report


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:6])))
