"""Create the PostGIS database named by DATABASE_URL when it does not exist (used by ``make setup``).

Run as ``python -m portal.dbsetup``; it connects to the server's ``postgres`` database with the
same credentials, creates the database, then the ``postgis`` extension inside it. Idempotent.
"""

from __future__ import annotations

import os
import sys

import dj_database_url
import psycopg
from psycopg import sql

DEFAULT = "postgis://postgres@127.0.0.1:5432/hydroportal"


def main() -> int:
    url = os.environ.get("DATABASE_URL", DEFAULT)
    cfg = dj_database_url.parse(url)
    conninfo = dict(
        host=cfg["HOST"] or None, port=cfg["PORT"] or None, user=cfg["USER"] or None, password=cfg["PASSWORD"] or None
    )
    name = cfg["NAME"]
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"created database {name}")
        with psycopg.connect(dbname=name, autocommit=True, **conninfo) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        print(f"DATABASE_URL={url}: cannot prepare the PostGIS database: {exc}", file=sys.stderr)
        return 1
    print(f"database {name} ready (PostGIS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
