#!/usr/bin/env bash
# mtlkit vs DeepCTR-Torch, torch-rechub and a lean PyTorch loop; see bench.py for options.
# Makes its own virtual environment (benchmarks/peers/.venv) on first use. torch==2.13.0 is
# pinned in every pip call so that no peer's requirements swap the torch build.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
TORCH="torch==2.13.0"
STAMP="$VENV/.installed"
# requests: DeepCTR-Torch imports it without declaring it.
PEERS=(deepctr-torch==0.3.0 torch-rechub==0.9.0 requests==2.34.2)
if [[ ! -f "$STAMP" || "$REPO/requirements-lock.txt" -nt "$STAMP" || "$0" -nt "$STAMP" ]]; then
    test -x "$VENV/bin/python" || "${PYTHON:-python3}" -m venv "$VENV"
    PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
    # mtlkit's pinned dependencies (torch==2.13.0 among them), then the peers constrained to
    # the same pins, then mtlkit itself from this checkout.
    "${PIP[@]}" "$TORCH" -r "$REPO/requirements-lock.txt"
    sed 's/\[[^]]*\]//' "$REPO/requirements-lock.txt" > "$VENV/constraints.txt"  # no extras
    "${PIP[@]}" "$TORCH" "${PEERS[@]}" -c "$VENV/constraints.txt"
    "${PIP[@]}" "$TORCH" --no-deps -e "$REPO"
    "$VENV/bin/python" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
    touch "$STAMP"
fi
exec "$VENV/bin/python" "$HERE/bench.py" "$@"
