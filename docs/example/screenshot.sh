#!/usr/bin/env bash
# Regenerate docs/example/dashboard.png, the README's picture of the HTML report:
# the committed fault-corpus run (docs/example/corpus-matrix.json) rendered by
# archmatrix's HTML renderer, photographed by headless Chromium.
#   PYTHONPATH=src bash docs/example/screenshot.sh     (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -n "$browser" ]] || { echo "screenshot.sh: needs chromium (apt-get install chromium)" >&2; exit 1; }
page=$(mktemp -d)/matrix.html
"${PYTHON:-python3}" -c '
import sys
from pathlib import Path
from archmatrix.matrix import read_matrix
from archmatrix.render import html
Path(sys.argv[2]).write_text(html.render(read_matrix(Path(sys.argv[1])), plots=False), encoding="utf-8")
' docs/example/corpus-matrix.json "$page"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1000 \
    --screenshot="$PWD/docs/example/dashboard.png" "file://$page" 2>/dev/null
echo "screenshot.sh: docs/example/dashboard.png"
