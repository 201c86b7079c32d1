"""The supported combinations of answers (cookiecutter-django style): every value
of every choice appears at least once; tests/test_render.py checks each one."""

from __future__ import annotations

from typing import Any

SUPPORTED: list[dict[str, str]] = [
    {},  # the defaults
    {
        "cloud_target": "aws",
        "db_size": "large",
        "python_version": "3.11",
        "worker_replicas": "3",
        "auth": "none",
    },
    {
        "cloud_target": "azure",
        "db_size": "medium",
        "example_domain": "none",
        "background_worker": "yes",
    },
    {
        "cloud_target": "render",
        "db_size": "small",
        "include_frontend": "no",
        "background_worker": "no",
        "auth": "api_key",
    },
    {"cloud_target": "vercel", "db_size": "xlarge", "python_version": "3.13"},
    {
        "cloud_target": "kubernetes",
        "db_size": "xlarge",
        "api_replicas": "6",
        "api_workers": "4",
        "worker_pool_max_size": "6",
        "auth": "both",
    },
    {
        "example_domain": "none",
        "include_frontend": "no",
        "run_checks": "no",
        "background_worker": "no",
    },
]


def variant_id(answers: dict[str, Any]) -> str:
    return "-".join(f"{key}={value}" for key, value in answers.items()) or "defaults"
