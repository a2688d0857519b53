#!/usr/bin/env bash
# Do pyproject's floors work? Installs every dependency at its floor's series (">=1.26" → "==1.26.*", the
# lowest minor release it allows) into a fresh virtual environment and runs the quick tests there:
#
#     bash scripts/check_floors.sh            # from the repository root; VENV=/tmp/x to choose the folder
#
# torch stays at the Makefile's pin (2.13.0): PyPI's Linux torch wheels for older releases are CUDA builds
# of several GB, so the torch floor (2.5) is read off the APIs the code uses, not run here.
set -euo pipefail
VENV=${VENV:-/tmp/mammosynth-floors}
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
floors=$("$VENV/bin/python" - <<'PY'
import re
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project["optional-dependencies"]["app"] + project["optional-dependencies"]["scale"]
print(" ".join(re.sub(r">=\s*([\w.]+)", r"==\1.*", d) for d in wanted if not d.startswith("torch")))
PY
)
echo "floors: $floors"
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet $floors pytest pytest-xdist
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
"$VENV/bin/python" -m pip list 2>/dev/null | grep -i -E "^(numpy|scipy|scikit-image|pillow|matplotlib|monai|pyarrow|pydicom|safetensors|fastapi|tifffile) "
"$VENV/bin/python" -m pytest -q -n 2 -p no:cacheprovider tests/test_io.py tests/test_datasets.py tests/test_phantom.py \
    tests/test_hostile.py tests/test_app_limits.py tests/test_training.py tests/test_packaging.py \
    tests/test_streaming.py tests/test_ray_expand.py
