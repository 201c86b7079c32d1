"""Print the OpenAPI description the service serves at /openapi.json, for linters.

Builds the app without starting it (the database pool opens in the lifespan only).
"""

from __future__ import annotations

import json
import sys

from {{ cookiecutter.package_name }}.startup import create_app


def main() -> int:
    json.dump(create_app().openapi(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
