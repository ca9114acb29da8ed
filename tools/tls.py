"""The TLS context the adapters' own httpx clients verify with, one for the process.

httpx builds a context per client, each loading its own copy of the CA certificates (about
0.8 MB); a catalog of many services has a gateway and a readiness probe each. This is the same
context httpx would build (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR), made once: a
context is safe to share between clients and threads.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_context() -> ssl.SSLContext:
    """Return the process's verifying TLS context for httpx clients."""
    return httpx.create_ssl_context()
