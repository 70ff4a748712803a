"""A real S3-compatible server for the object-storage tests: moto's standalone server on 127.0.0.1.

moto's ``ThreadedMotoServer`` (the server s3fs's own test suite runs) answers the S3 REST API over real
HTTP on a free loopback port, in a thread of the test process: the portal's web server and Celery worker,
started by the tests as other processes, reach it like any S3 endpoint. Credentials are the dummy ones
moto accepts; nothing leaves the machine.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    def root(self, prefix: str) -> str:
        """A data root ``s3://bucket/prefix`` on this server."""
        return f"s3://{self.bucket}/{prefix}"

    def env(self, prefix: str) -> dict[str, str]:
        """The environment of a portal process whose data root is ``prefix`` on this server."""
        return {**CREDENTIALS, "DATA_ROOT": self.root(prefix), "DATA_ROOT_S3_ENDPOINT_URL": self.endpoint}

    def filesystem(self):
        """An s3fs file system on this server (for the tests' own look at the bucket)."""
        import s3fs

        return s3fs.S3FileSystem(
            key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            client_kwargs={"endpoint_url": self.endpoint},
            skip_instance_cache=True,
        )


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free 127.0.0.1 port with one empty bucket; the AWS variables set for this process."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in CREDENTIALS.items():
            mp.setenv(name, value)
        found = S3Server(f"http://127.0.0.1:{port}", f"portal-test-{uuid.uuid4().hex[:8]}")
        found.filesystem().mkdir(found.bucket)
        yield found
    server.stop()


@pytest.fixture
def s3_root(s3_server, settings, tmp_path):
    """The data root on the S3 server for one test (a prefix of its own), with a local WORK_ROOT."""
    prefix = f"unit-{uuid.uuid4().hex[:8]}"
    settings.DATA_ROOT = s3_server.root(prefix)
    settings.DATA_ROOT_S3_ENDPOINT_URL = s3_server.endpoint
    settings.WORK_ROOT = tmp_path / "work"
    return prefix
