"""Operations endpoints: /healthz (alive), /readyz (database reachable, catalogue loaded) and
Prometheus metrics at /metrics."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_web_app
from bot.core import Incoming

pytestmark = pytest.mark.parametrize("databases", ["sqlite"], indirect=True)


def _value(text: str, name: str, labels: str = "") -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{labels} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_health_readiness_and_metrics(engine) -> None:
    app = build_web_app(engine.services.settings, engine)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 200 and body["status"] == "ready"
        assert body["catalogue_procedures"] == len(engine.services.catalogue) > 0

        before = await (await client.get("/metrics")).text()
        await engine.handle(Incoming("test", "ops1", "u", text="/start"))
        await engine.handle(Incoming("test", "ops1", "u", text="qwxzv plorf"))  # a miss
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        after = await response.text()
        labels = '{channel="test",handler="start.show_menu"}'
        assert _value(after, "motcua_messages_total", labels) == (
            _value(before, "motcua_messages_total", labels) + 1
        )
        assert _value(after, "motcua_search_misses_total") >= (
            _value(before, "motcua_search_misses_total") + 1
        )
        assert 'motcua_turn_seconds_bucket{channel="test",le="0.005"}' in after
        assert "motcua_feedback_created 0.0" in after
        assert "motcua_feedback_overdue 0.0" in after
        # Nothing a citizen typed appears in the metrics.
        assert "plorf" not in after


async def test_readyz_says_not_ready_when_the_database_is_gone(engine) -> None:
    app = build_web_app(engine.services.settings, engine)
    async with TestClient(TestServer(app)) as client:
        await engine.services.db.dispose()
        engine.services.db.engine.pool._creator = _refuse  # every new connection fails
        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 503
        assert body["status"] == "not ready" and body["problems"][0].startswith("database")
        assert (await client.get("/healthz")).status == 200  # alive all the same
        assert (await client.get("/metrics")).status == 200  # process counts still go out


def _refuse(*_args, **_kwargs):
    raise ConnectionRefusedError("database is down")
