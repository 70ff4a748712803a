"""``/health/`` reports the database, the broker and the data root, 200 or 503."""

import pytest


@pytest.mark.django_db
def test_health_is_ok_when_everything_answers(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and set(body["checks"]) == {"database", "broker", "data_root"}
    assert all(c["ok"] for c in body["checks"].values())


@pytest.mark.django_db
def test_health_is_503_naming_a_broker_that_does_not_answer(client, settings):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    response = client.get("/health/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and not body["checks"]["broker"]["ok"] and body["checks"]["database"]["ok"]
    assert "Connection" in body["checks"]["broker"]["detail"]


@pytest.mark.django_db
def test_health_is_503_when_the_data_root_is_not_writable(client, settings, tmp_path):
    settings.DATA_ROOT = tmp_path / "missing"
    response = client.get("/health/")
    assert response.status_code == 503 and not response.json()["checks"]["data_root"]["ok"]
