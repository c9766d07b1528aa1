"""The ``labsched`` facade's namespace: every public name, and no stray helper."""

from __future__ import annotations

import json
import subprocess
import sys


def test_dir_labsched_lists_the_public_names_and_no_helpers():
    # A fresh interpreter: other tests import subpackages, which become attributes.
    code = "import labsched, json; print(json.dumps(dir(labsched)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    names = set(json.loads(out))
    import labsched

    assert set(labsched.__all__) <= names
    public = {n for n in names if not n.startswith("_")}
    assert public - set(labsched.__all__) == {"envs"}  # the subpackage the facade imports
    for stray in ("annotations", "version", "PackageNotFoundError", "lazy_attributes", "importlib"):
        assert stray not in names
    for name in labsched.__all__:
        assert getattr(labsched, name) is not None
    assert isinstance(labsched.__version__, str) and labsched.__version__
