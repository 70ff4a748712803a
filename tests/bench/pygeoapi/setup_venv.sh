#!/usr/bin/env bash
# Create (or update) the venv of pygeoapi 0.21.0 used by tests/bench/test_bench_subsets.py, from the package
# registry, at $PYGEOAPI_VENV (default <repo>/.venv-pygeoapi). Idempotent: a stamp records the requirements installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
venv="${PYGEOAPI_VENV:-$repo/.venv-pygeoapi}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
[ -x "$venv/bin/python" ] || python3.11 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" -c "import pygeoapi, xarray, zarr; assert pygeoapi.__version__ == '0.21.0', pygeoapi.__version__"
echo "$want" > "$stamp"
