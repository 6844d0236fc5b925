"""The one-node cluster module, importable by the tests beside it (importlib mode)."""
import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("tests_slurm_cluster",
                                               Path(__file__).with_name("cluster.py"))
_module = importlib.util.module_from_spec(_spec)
sys.modules["tests_slurm_cluster"] = _module
_spec.loader.exec_module(_module)
