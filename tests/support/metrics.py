"""The service's Prometheus metrics, scraped and parsed by prometheus_client."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metric_samples(text: str) -> Samples:
    """Each sample of an exposition by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(metrics_url: str) -> Samples:
    """Every worker's metrics, from the listener of their own."""
    return metric_samples(httpx.get(metrics_url, timeout=5).text)
