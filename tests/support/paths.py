"""Where the template and the tools of its test environment are."""

from __future__ import annotations

import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2]
# The virtual environment the suite runs in: cookiecutter, k6, the validators.
BIN = Path(sys.executable).parent
