"""The store: what was seen. Machines, sessions and cells, in a SQLite file or a PostgreSQL
database (one interface: ``base.Store``; ``Store.open`` picks the implementation from the
argument, see ``locator``).

``base`` holds every read and write; ``database`` is the SQLite file, ``postgres`` the fleet
database; ``schema`` is the format (version history, row coding, file checks); ``merge``
gathers other stores into one; ``locator`` parses ``--store`` (paths, URLs, ``env:VAR``).
"""

from harness.store import database, postgres  # noqa: F401 - each registers its kind of store
from harness.store.base import Store
from harness.store.locator import DEFAULT_PATH, StoreRef
from harness.store.schema import SCHEMA_VERSION, StoreError

__all__ = ["DEFAULT_PATH", "SCHEMA_VERSION", "Store", "StoreError", "StoreRef"]
