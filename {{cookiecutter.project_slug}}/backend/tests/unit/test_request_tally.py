"""A request's metrics, tallied per request and written at a flush (metrics.RequestTally):
the same values as prometheus-client's own observe() and inc() of each request."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from {{ cookiecutter.package_name }}.metrics import DURATION_BOUNDS, RequestTally

from ..support.scopes import routed_scope

# On and around the bounds (a bucket holds its bound), and past the last (+Inf).
DURATIONS = (0.0, 0.004, 0.005, 0.0050001, 0.01, 0.3, 2.5, 10.0, 10.5, 99.0)


def duration_samples(registry: CollectorRegistry, route: str) -> dict[tuple[str, str], float]:
    """http_request_duration_seconds' samples of `route`: (name, le) → value."""
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for metric in registry.collect()
        if metric.name == "http_request_duration_seconds"
        for sample in metric.samples
        if sample.labels.get("route") == route and not sample.name.endswith("_created")
    }


def test_a_flush_writes_what_observing_each_request_would() -> None:
    route = "/tally/{same-as-observe}"
    tally = RequestTally()
    expected_registry = CollectorRegistry()
    expected = Histogram(
        "http_request_duration_seconds",
        "as metrics.REQUEST_DURATION",
        ["method", "route"],
        buckets=DURATION_BOUNDS,
        registry=expected_registry,
    ).labels("GET", route)
    for seconds in DURATIONS:
        tally.started()
        tally.finished(routed_scope(route), 200, seconds)
        expected.observe(seconds)

    tally.flush()

    observed = duration_samples(REGISTRY, route)
    assert observed == duration_samples(expected_registry, route)
    assert observed[("http_request_duration_seconds_count", "")] == len(DURATIONS)
    labels = {"method": "GET", "route": route, "status": "200"}
    assert REGISTRY.get_sample_value("http_requests_total", labels) == len(DURATIONS)


def test_nothing_is_written_before_a_flush_and_nothing_twice() -> None:
    route = "/tally/{once}"
    labels = {"method": "POST", "route": route, "status": "201"}
    tally = RequestTally()
    for _ in range(3):
        tally.started()
        tally.finished(routed_scope(route, "POST"), 201, 0.002)

    assert REGISTRY.get_sample_value("http_requests_total", labels) is None
    tally.flush()
    tally.flush()
    assert REGISTRY.get_sample_value("http_requests_total", labels) == 3


def test_the_requests_in_progress_are_those_started_and_not_finished() -> None:
    tally = RequestTally()
    for _ in range(3):
        tally.started()
    tally.finished(routed_scope("/tally/{progress}"), 200, 0.001)

    tally.flush()
    assert REGISTRY.get_sample_value("http_requests_in_progress") == 2
    tally.finished(routed_scope("/tally/{progress}"), 200, 0.001)
    tally.finished(routed_scope("/tally/{progress}"), 200, 0.001)
    tally.flush()
    assert REGISTRY.get_sample_value("http_requests_in_progress") == 0
