"""Gunicorn's settings for the portal (``make run``: ``gunicorn -c portal/gunicorn.conf.py portal.wsgi``).

Command-line options still win over these. The longest a web worker holds a request is
``timeout`` seconds (``GUNICORN_TIMEOUT``, 120 by default): a sync worker silent for longer is
killed and replaced by the arbiter, and its client gets a closed connection. Answers that could take
longer are jobs (subsets above ``SUBSET_SYNC_MAX_BYTES``), so no request of the portal needs more.
"""

import os

import gunicorn.http.wsgi

workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
# Request line (method, path and query) at most 8190 bytes, the most gunicorn allows: a longer one is
# a 414 from gunicorn itself; long polygons go in a POST body (capped by REQUEST_MAX_BODY_BYTES).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# The Server header: gunicorn sends "Server: gunicorn" (gunicorn.http.wsgi.Response takes
# gunicorn.http.wsgi.SERVER when it is made); the portal names no software. This file is read by the
# arbiter before it forks the workers, which inherit the change.
gunicorn.http.wsgi.SERVER = os.environ.get("SERVER_BANNER", "portal")
