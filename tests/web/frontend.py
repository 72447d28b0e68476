"""The front end's build, for tests: npm ci when node_modules is missing, then a build when
dist/ is older than any source. ``make install`` does the same for users."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FRONTEND = Path(__file__).resolve().parents[2] / "src" / "corral" / "web" / "frontend"
DIST = FRONTEND / "dist"


def _newest_source() -> float:
    files = [*FRONTEND.glob("src/**/*"), FRONTEND / "build.mjs", FRONTEND / "package-lock.json"]
    return max(f.stat().st_mtime for f in files if f.is_file())


def ensure_built() -> Path:
    npm = shutil.which("npm")
    assert npm, "npm is not installed (make install installs it)"
    if not (FRONTEND / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
    index = DIST / "index.html"
    if not index.is_file() or index.stat().st_mtime < _newest_source():
        subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True)
    return DIST
