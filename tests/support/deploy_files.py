"""Reading what a cloud target renders: the project's own settings (configuration
YAMLs, layered as the service layers them) and its deploy files, built or parsed the
way each platform reads them (kustomize, CloudFormation's YAML, Bicep, Blueprint)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from .commands import run
from .paths import BIN

KUBERNETES_VERSION = "1.30"


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def production_settings(project: Path) -> dict[str, Any]:
    """configuration/base.yaml with production.yaml over it, as the service loads them."""
    configuration = project / "backend" / "configuration"
    base = yaml.safe_load((configuration / "base.yaml").read_text())
    production = yaml.safe_load((configuration / "production.yaml").read_text()) or {}
    return _merge(base, production)


def write_example_secrets(overlay: Path, extra: str = "") -> None:
    for example in overlay.glob("*.env.example"):
        (overlay / example.name.removesuffix(".example")).write_text(example.read_text() + extra)


def kustomize(overlay: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` of an overlay (its example secrets filled in), checked by
    kubernetes-validate --strict, as documents."""
    write_example_secrets(overlay, "PGBOUNCER_DB_HOST=db.internal\n")
    result = run([str(BIN / "kubectl"), "kustomize", str(overlay)])
    assert result.returncode == 0, result.stderr
    built = overlay.parent / f"{overlay.name}.built.yaml"
    built.write_text(result.stdout)
    validated = run(
        [str(BIN / "kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, str(built)]
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def by_kind(documents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        kinds.setdefault(document["kind"], []).append(document)
    return kinds


def named(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The document called `name`, or `name-<hash>` as kustomize names generated ones."""
    generated = re.compile(rf"{re.escape(name)}(-[a-z0-9]{{10}})?")
    (document,) = [d for d in documents if generated.fullmatch(d["metadata"]["name"])]
    return document


def overlay_with_pgbouncer(project: Path) -> Path:
    deploy = project / "deploy/kubernetes"
    overlay = deploy / "overlays/production-pgbouncer"
    if not overlay.exists():
        shutil.copytree(deploy / "overlays/production", overlay)
        with (overlay / "kustomization.yaml").open("a") as kustomization:
            kustomization.write("components:\n  - ../../components/pgbouncer\n")
    return overlay
