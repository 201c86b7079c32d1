"""Prune what was not chosen, then prove the project works by running its own
Makefile targets: install, init-db, smoke. Each step can be re-run by hand."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ANSWERS = json.loads({{ cookiecutter | tojson | tojson }})
# From manifest.yaml, through template_extensions.unselected_paths.
UNSELECTED = json.loads({{ cookiecutter | unselected_paths | tojson | tojson }})
PROJECT = Path.cwd()
SKIP_ENV = "HIGHCONCURRENCY_SKIP_CHECKS"
NO_DATABASE = 3  # scripts/resolve_database.py's exit code when no server can be found


def prune():
    for path in UNSELECTED:
        target = PROJECT / path
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        remove_empty_parents(target)
    remove_packages_left_empty()


def remove_packages_left_empty():
    """domain/ serves the ledger and the background worker: once neither is chosen it
    holds only its __init__.py, and an empty package is no place to start from."""
    for init in sorted(PROJECT.glob("backend/src/*/*/__init__.py")):
        if [child.name for child in init.parent.iterdir()] == ["__init__.py"]:
            shutil.rmtree(init.parent)


def remove_empty_parents(path):
    """deploy/ holds one directory per cloud target: drop it once all are pruned."""
    for parent in path.parents:
        if parent == PROJECT or not parent.is_dir() or any(parent.iterdir()):
            return
        parent.rmdir()


def checks_enabled():
    if os.environ.get(SKIP_ENV, "").lower() in ("1", "true", "yes"):
        print(f"checks skipped ({SKIP_ENV} is set)")
        return False
    if ANSWERS["run_checks"] != "yes":
        print("checks skipped (run_checks=no)")
        return False
    return True


def find_python():
    """The first of python<version>, python3 and cookiecutter's own interpreter that
    runs and is at least 3.11 (a pyenv shim may exist without a working Python)."""
    for name in (f"python{ANSWERS['python_version']}", "python3", sys.executable):
        candidate = shutil.which(name)
        if candidate is None:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version.split()[0], sys.version_info >= (3, 11))"],
            capture_output=True, text=True)
        version, _, recent = probe.stdout.strip().partition(" ")
        if probe.returncode == 0 and recent == "True":
            return candidate, version
    sys.exit("✗ install: no Python 3.11 or later found")


def run(step, command, summary, env):
    started = time.monotonic()
    result = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        print(f"✗ {step} failed ({' '.join(command)}, exit {result.returncode}):", file=sys.stderr)
        print(result.stdout + result.stderr, file=sys.stderr)
        sys.exit(1)
    summary.append(f"  ✓ {step:<10} {elapsed:5.1f} s")
    return result.stdout


def main():
    prune()
    if not checks_enabled():
        return
    # uv comes with cookiecutter's environment when the template's README is followed.
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    if shutil.which("uv", path=env["PATH"]) is None:
        sys.exit("✗ install: uv not found; `pip install uv`, or render with run_checks=no")
    python, version = find_python()
    print(f"checking the project with Python {version} ({python})")
    summary = []
    run("install", ["make", "install", f"PYTHON={python}"], summary, env)
    resolved = subprocess.run([python, "scripts/resolve_database.py"], cwd=PROJECT,
                              capture_output=True, text=True)
    if resolved.returncode == NO_DATABASE:
        print(resolved.stderr.strip())
        print("\n".join(summary))
        print("  - init-db and smoke skipped: no PostgreSQL found; run `make init-db smoke` "
              "once one is reachable (or set DATABASE_URL)")
        return
    env["APP_DATABASE__URL"] = resolved.stdout.strip()
    run("init-db", ["make", "init-db"], summary, env)
    run("smoke", ["make", "smoke"], summary, env)
    print("\n".join(summary))
    print(f"{ANSWERS['project_slug']} is ready: cd {ANSWERS['project_slug']} && make run")


if __name__ == "__main__":
    main()
