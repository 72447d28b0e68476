"""The front end's own unit tests (node's test runner, no browser): NDJSON stream parsing,
pull progress folding, the numbers under an answer, chat options."""

from __future__ import annotations

import shutil
import subprocess

from tests.web.frontend import FRONTEND


def test_node_unit_tests_pass() -> None:
    node = shutil.which("node")
    assert node, "node is not installed (make install installs it)"
    files = sorted(str(f.relative_to(FRONTEND)) for f in FRONTEND.glob("test/*.test.js"))
    assert len(files) >= 2
    result = subprocess.run(
        [node, "--test", *files], cwd=FRONTEND, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout
