import pytest

pytestmark = pytest.mark.django_db


def test_placeholder(client, grid_version):
    assert client.get("/api/edr/").status_code in (200, 404)
