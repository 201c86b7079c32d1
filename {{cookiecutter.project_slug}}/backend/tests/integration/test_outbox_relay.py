"""The outbox relay against the real PostgreSQL: pending events become delivery rows
and jobs in batches (one NOTIFY a batch), concurrent relays never enqueue an event
twice, a relay that dies mid-move loses nothing, and retention deletes only what is
settled and old."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from urllib.parse import urlsplit

import asyncpg
import pytest

from {{ cookiecutter.package_name }}.configuration import Settings
from {{ cookiecutter.package_name }}.db import relay, webhooks
from {{ cookiecutter.package_name }}.db.errors import DatabaseUnavailableError

from ..support.databases import downgrade, migrate, with_database
from ..support.outbox import delivery_jobs, opened, pending, subscribed_events, until_equal
from ..support.receiver import wait_until
from ..support.webhooks import event_ids, fetch
from ..support.worker import WorkerProcess, running_worker

pytestmark = pytest.mark.anyio


async def test_the_relay_moves_pending_events_in_batches_with_one_notify_each(
    settings: Settings, database_url: str
) -> None:
    async with opened(settings) as database:
        ids = await subscribed_events(database, 25)
        assert await delivery_jobs(database_url) == {}  # nothing enqueued by the writes
        notifications: list[str] = []
        listener = await asyncpg.connect(database_url)
        try:
            await listener.add_listener("ch_pgqueuer", lambda *args: notifications.append(args[3]))
            batches = [await relay.relay_batch(database, 10) for _ in range(4)]
            await asyncio.sleep(0.5)  # notifications arrive after their commit
        finally:
            await listener.close()
    assert [(moved.events, moved.deliveries, moved.full) for moved in batches] == [
        (10, 10, True), (10, 10, True), (5, 5, False), (0, 0, False)
    ]  # fmt: skip
    # One per batch's transaction that enqueued: none from the business transactions.
    assert len(notifications) == 3
    assert await pending(database_url) == set()
    assert await delivery_jobs(database_url) == dict.fromkeys(ids, 1)
    rows = await fetch(database_url, "SELECT count(*) AS n FROM webhook_deliveries")
    assert rows[0]["n"] == 25


async def test_a_batch_enqueues_at_most_its_size_in_jobs_however_many_subscriptions(
    settings: Settings, database_url: str
) -> None:
    # 500 events x 1,000 subscriptions in one batch outlasted the statement timeout,
    # and the relay retried that same batch forever.
    async with opened(settings) as database:
        ids = await subscribed_events(database, 8, subscriptions=12)
        one = await relay.relay_batch(database, 5)  # one event's fan-out exceeds the size
        batches = [await relay.relay_batch(database, 30) for _ in range(4)]
    assert one == relay.Moved(events=1, deliveries=12, full=True)
    assert [(moved.events, moved.deliveries, moved.full) for moved in batches] == [
        (2, 24, True), (2, 24, True), (2, 24, True), (1, 12, False)
    ]  # fmt: skip
    assert await delivery_jobs(database_url) == dict.fromkeys(ids, 12)


async def test_the_queue_figures_count_the_pending_events_and_age_the_oldest(
    settings: Settings, database_url: str
) -> None:
    async with opened(settings) as database:
        ids = await subscribed_events(database, 2)
        async with database.connection() as connection:
            await connection.execute(
                "UPDATE outbox_events SET created_at = now() - interval '2 hours'"
                " WHERE id = $1::uuid",
                min(ids),
            )
        before = await webhooks.queue_figures(database)
        await relay.relay_batch(database, 10)
        after = await webhooks.queue_figures(database)
    assert (before.pending_events, before.oldest_pending_seconds >= 7200) == (2, True)
    assert (after.pending_events, after.oldest_pending_seconds, after.jobs) == (0, 0, 2)


async def test_concurrent_relays_enqueue_each_event_once(
    settings: Settings, database_url: str
) -> None:
    relays = 6
    async with opened(settings, max_size=relays + 2) as database:
        ids = await subscribed_events(database, 300, subscriptions=2)

        async def relay_until_empty() -> int:
            moved_total = 0
            while (moved := await relay.relay_batch(database, 7)).events:
                moved_total += moved.events
            return moved_total

        moved = await asyncio.gather(*(relay_until_empty() for _ in range(relays)))
    assert sum(moved) == 300  # each event claimed by exactly one relay
    assert sum(1 for count in moved if count) > 1  # and the relays did share the work
    assert await delivery_jobs(database_url) == dict.fromkeys(ids, 2)  # one per subscription


async def test_a_relay_that_dies_mid_move_loses_nothing_and_holds_nothing(
    settings: Settings, database_url: str
) -> None:
    async with opened(settings) as database:
        ids = await subscribed_events(database, 30)
        killer = await asyncpg.connect(database_url)

        async def die_mid_move() -> None:
            async with database.connection() as doomed, doomed.transaction():
                assert (await relay.move_pending(doomed, 10)).events == 10
                # Another relay meanwhile skips the claimed batch and takes the next.
                assert (await relay.relay_batch(database, 10)).events == 10
                # The relay's session dies before its commit (a crash, as the database
                # sees one).
                await killer.execute("SELECT pg_terminate_backend($1)", doomed.get_server_pid())
                await doomed.execute("SELECT 1")

        try:
            with pytest.raises((DatabaseUnavailableError, asyncpg.PostgresError, OSError)):
                await die_mid_move()
        finally:
            await killer.close()
        left = await pending(database_url)
        assert len(left) == 20  # the dead relay's 10 are pending again, the other 10 are not
        assert set(await delivery_jobs(database_url)) == ids - left
        while (await relay.relay_batch(database, 10)).events:
            pass
    assert await delivery_jobs(database_url) == dict.fromkeys(ids, 1)


async def test_retention_deletes_only_settled_events_and_queue_history_past_it(
    settings: Settings, database_url: str
) -> None:
    async with opened(settings) as database:
        ids = sorted(await subscribed_events(database, 4))
        while (await relay.relay_batch(database, 10)).events:
            pass
        old, old_pending, old_unrelayed, recent = ids
        async with database.connection() as connection:
            await connection.execute(
                "UPDATE webhook_deliveries SET status = 'delivered' WHERE event_id <> $1::uuid",
                old_pending,
            )
            await connection.execute(
                "UPDATE outbox_events SET created_at = now() - interval '2 hours'"
                " WHERE id = ANY($1::uuid[])",
                [old, old_pending, old_unrelayed],
            )
            await connection.execute(
                "UPDATE outbox_events SET relayed = false WHERE id = $1::uuid", old_unrelayed
            )
            await connection.execute(
                "INSERT INTO pgqueuer_log (created, job_id, status, priority, entrypoint)"
                " VALUES (now() - interval '2 hours', -1, 'successful', 0, 'test.old'),"
                " (now(), -2, 'successful', 0, 'test.recent')"
            )
            await connection.execute(
                "INSERT INTO pgqueuer (priority, status, entrypoint, updated)"
                " VALUES (0, 'failed', 'test.old', now() - interval '2 hours'),"
                " (0, 'failed', 'test.recent', now())"
            )
        deleted = [(await relay.expire(database, 3600, 1)).rows for _ in range(4)]
    # The old settled event, the old log row and the old held job.
    assert deleted == [3, 0, 0, 0]
    events = await fetch(database_url, "SELECT id::text FROM outbox_events")
    assert {row["id"] for row in events} == {old_pending, old_unrelayed, recent}
    deliveries = await fetch(database_url, "SELECT event_id::text FROM webhook_deliveries")
    assert old not in {row["event_id"] for row in deliveries}  # gone with its event
    log = await fetch(database_url, "SELECT entrypoint FROM pgqueuer_log")
    assert {row["entrypoint"] for row in log} - {webhooks.DELIVER} == {"test.recent"}
    held = await fetch(database_url, "SELECT entrypoint FROM pgqueuer WHERE status = 'failed'")
    assert [row["entrypoint"] for row in held] == ["test.recent"]


async def test_retention_dead_letters_the_pending_delivery_of_a_held_job_it_deletes(
    settings: Settings, database_url: str
) -> None:
    async with opened(settings) as database:
        old, recent = sorted(await subscribed_events(database, 2))
        while (await relay.relay_batch(database, 10)).events:
            pass
        async with database.connection() as connection:
            # Both delivery jobs held by PgQueuer after an unexpected failure (their
            # rows still pending); one held since before the retention.
            await connection.execute(
                "UPDATE pgqueuer SET status = 'failed', updated = now() - CASE"
                " WHEN convert_from(payload, 'UTF8')::jsonb ->> 'event_id' = $1"
                " THEN interval '2 hours' ELSE interval '0' END",
                old,
            )
            await connection.execute(
                "UPDATE outbox_events SET created_at = now() - interval '2 hours'"
            )
        first = await relay.expire(database, 3600, 10)
        deliveries = await fetch(
            database_url,
            "SELECT event_id::text, status, last_error FROM webhook_deliveries ORDER BY 1",
        )
        second = await relay.expire(database, 3600, 10)
    assert first == relay.Expired(rows=1, dead_deliveries=1)  # the old held job
    assert [(row["event_id"], row["status"]) for row in deliveries] == [
        (old, "dead"), (recent, "pending")
    ]  # fmt: skip
    assert "held" in deliveries[0]["last_error"]
    # Settled now, the old event expires in turn; the recent one's job is still held.
    assert second == relay.Expired(rows=1, dead_deliveries=0)
    assert await event_ids(database_url) == {recent}


async def test_the_worker_relays_and_cleans_up_on_its_own(
    settings: Settings, database_url: str
) -> None:
    async with opened(settings) as database:
        ids = await subscribed_events(database, 3)
        async with database.connection() as connection:
            await connection.execute(
                "UPDATE outbox_events SET created_at = now() - interval '2 hours'"
                " WHERE id = $1::uuid",
                min(ids),
            )
    # The receiver does not exist: its deliveries stay pending, except the old event's,
    # settled below once the relay made it.
    with running_worker(
        database_url,
        APP_WORKER__RETENTION_SECONDS="3600",
        APP_WORKER__CLEANUP_INTERVAL_SECONDS="0.1",
        APP_WEBHOOKS__INITIAL_DELAY_SECONDS="30",
        APP_WEBHOOKS__MAX_DELAY_SECONDS="30",
    ):
        nothing: set[str] = set()
        await until_equal(lambda: pending(database_url), nothing, "all relayed")
        rows = await fetch(
            database_url,
            "UPDATE webhook_deliveries SET status = 'delivered' WHERE event_id = $1::uuid"
            " RETURNING event_id",
            min(ids),
        )
        assert len(rows) == 1
        # The settled old event goes; the recent ones and their pending deliveries stay.
        await until_equal(lambda: event_ids(database_url), ids - {min(ids)}, "cleaned up")


async def _terminate(database_url: str, application_name_like: str) -> int:
    rows = await fetch(
        database_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name LIKE $1",
        application_name_like,
    )
    return len(rows)


async def test_the_relay_outlives_its_connections_and_a_lost_queue_stops_the_worker(
    settings: Settings, database_url: str
) -> None:
    async with opened(settings) as database:
        first = await subscribed_events(database, 2)
        # The receiver does not exist: each delivery job waits for its retry.
        with running_worker(
            database_url,
            APP_WEBHOOKS__INITIAL_DELAY_SECONDS="30",
            APP_WEBHOOKS__MAX_DELAY_SECONDS="30",
        ) as worker:
            nothing: set[str] = set()
            await until_equal(lambda: pending(database_url), nothing, "relayed")
            # The pool's connections dropped (a database restart, as the worker sees it):
            # the relay's next rounds fail, then it carries on with new connections.
            assert await _terminate(database_url, "%-worker") > 0
            later = await subscribed_events(database, 2, subscriptions=0)
            await until_equal(lambda: pending(database_url), nothing, "relayed again")
            assert set(await delivery_jobs(database_url)) == first | later
            # The queue's own connection dropped: PgQueuer's loop ends with the error,
            # and the worker exits with it (it used to log "worker stopped" and exit 0).
            assert await _terminate(database_url, "%-worker-queue") == 1
            exit_status = await asyncio.to_thread(worker.process.wait, 30)
    assert exit_status != 0


def _relay_failures(worker: WorkerProcess, loop: str = "relay") -> float:
    pattern = r'^worker_loop_failures_total\{loop="' + loop + r'"\} (\S+)$'
    found = re.search(pattern, worker.metrics(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def _failed_rounds_reach(worker: WorkerProcess, rounds: int, loop: str = "relay") -> bool:
    return await asyncio.to_thread(_relay_failures, worker, loop) >= rounds


async def test_the_relay_logs_an_outage_once_and_its_end_once_and_counts_each_round(
    database_url: str,
) -> None:
    # On another database of the server (a session cannot lock out its own), to let
    # connections in again.
    keeper = await asyncpg.connect(with_database(database_url, "postgres"))
    database = urlsplit(database_url).path.lstrip("/")
    name = await keeper.fetchval("SELECT quote_ident($1)", database)
    try:
        with running_worker(database_url, APP_WORKER__RELAY_INTERVAL_SECONDS="0.05") as worker:
            # Its metrics answer before its queue connects: cut connections then, and
            # the worker exits at start-up (the queue is its lifeline) instead.
            await wait_until(lambda: "worker started" in worker.output(), 30, "the worker")
            # The database away, as the relay sees it: its pool's connections dropped,
            # and no new one let in. Twenty rounds at least fail meanwhile.
            await keeper.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            try:
                await keeper.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = $1 AND application_name LIKE '%-worker'",
                    database,
                )
                await until_equal(lambda: _failed_rounds_reach(worker, 20), True, "failures")
            finally:
                await keeper.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            await wait_until(lambda: "works again" in worker.output(), 20, "the relay back")
            failures = _relay_failures(worker)
            lines = [json.loads(line) for line in worker.output().splitlines() if line[:1] == "{"]
    finally:
        await keeper.close()
    relay_lines = [line for line in lines if line.get("loop") == "relay"]
    assert [line["level"] for line in relay_lines] == [40, 30]  # a warning, then info
    assert relay_lines[1]["failed_rounds"] == failures >= 20


async def test_a_failing_retention_is_its_own_outage_not_the_relays(database_url: str) -> None:
    """Retention runs in the relay's task, but is an outage of its own: a clean-up that
    fails each time must not read as the relay failing, then working again, every
    cleanup interval."""
    connection = await asyncpg.connect(database_url)
    try:
        # An old log row retention will try to delete, and a trigger refusing it.
        await connection.execute(
            "INSERT INTO pgqueuer_log (created, job_id, status, priority, entrypoint)"
            " VALUES (now() - interval '30 days', 0, 'successful', 0, 'test.old');"
            " CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;"
            " CREATE TRIGGER refuse BEFORE DELETE ON pgqueuer_log"
            " FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
        with running_worker(
            database_url,
            APP_WORKER__RELAY_INTERVAL_SECONDS="0.05",
            APP_WORKER__CLEANUP_INTERVAL_SECONDS="0.1",
        ) as worker:
            await until_equal(lambda: _failed_rounds_reach(worker, 3, "retention"), True, "fails")
            await connection.execute("DROP TRIGGER refuse ON pgqueuer_log")
            await wait_until(lambda: "works again" in worker.output(), 20, "retention back")
            relay_failures = _relay_failures(worker)
            lines = [json.loads(line) for line in worker.output().splitlines() if line[:1] == "{"]
    finally:
        await connection.close()
    assert relay_failures == 0
    assert [line for line in lines if line.get("loop") == "relay"] == []
    retention = [line["level"] for line in lines if line.get("loop") == "retention"]
    assert retention == [40, 30]  # a warning, then info


async def test_revision_0005_turns_unfinished_fan_out_jobs_into_pending_events_and_back(
    database_url: str,
) -> None:
    await asyncio.to_thread(downgrade, database_url, "0004")
    connection = await asyncpg.connect(database_url)
    try:
        # What 0004's code left: events with a fan-out job queued, picked by a worker
        # that died mid fan-out (no 0005 worker takes it over), held after failing;
        # or done.
        statuses = ("queued", "picked", "failed")
        unfinished = {
            status: await connection.fetchval("SELECT gen_random_uuid()") for status in statuses
        }
        done = await connection.fetchval("SELECT gen_random_uuid()")
        await connection.execute(
            "INSERT INTO outbox_events (id, type, payload)"
            " SELECT id, 'webhook.ping', '{}' FROM unnest($1::uuid[]) AS id",
            [*unfinished.values(), done],
        )
        for status, event in unfinished.items():
            await connection.execute(
                "INSERT INTO pgqueuer (priority, status, entrypoint, payload)"
                " VALUES (0, $1, 'webhooks.fan_out', $2)",
                status,
                event.bytes,
            )
        await asyncio.to_thread(migrate, database_url)
        assert await pending(database_url) == {str(event) for event in unfinished.values()}
        assert await connection.fetchval("SELECT count(*) FROM pgqueuer") == 0
        await asyncio.to_thread(downgrade, database_url, "0004")
        jobs = await connection.fetch("SELECT entrypoint, payload FROM pgqueuer")
        assert sorted((job["entrypoint"], job["payload"]) for job in jobs) == sorted(
            ("webhooks.fan_out", event.bytes) for event in unfinished.values()
        )
    finally:
        await connection.close()


async def test_revision_0007_gives_new_events_time_ordered_ids_and_keeps_the_old_ones(
    database_url: str,
) -> None:
    await asyncio.to_thread(downgrade, database_url, "-1")
    connection = await asyncpg.connect(database_url)
    try:
        insert = (
            "INSERT INTO outbox_events (type, payload) VALUES ('webhook.ping', '{}') RETURNING id"
        )
        with pytest.raises(asyncpg.NotNullViolationError):
            await connection.fetchval(insert)
        old = await connection.fetchval("SELECT gen_random_uuid()")
        await connection.execute(
            "INSERT INTO outbox_events (id, type, payload) VALUES ($1, 'webhook.ping', '{}')", old
        )
        await asyncio.to_thread(migrate, database_url)
        new = await connection.fetchval(insert)
        assert uuid.UUID(str(new)).version == 7
        assert await pending(database_url) == {str(old), str(new)}
        await asyncio.to_thread(downgrade, database_url, "-1")
        with pytest.raises(asyncpg.NotNullViolationError):
            await connection.fetchval(insert)
        assert await pending(database_url) == {str(old), str(new)}
    finally:
        await connection.close()
