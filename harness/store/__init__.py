"""The store: what was seen. One SQLite file of machines, sessions and cells.

``database`` opens, validates, reads and writes it; ``schema`` is the on-disk format (version
history, row coding, file checks); ``merge`` gathers other machines' stores into one.
"""

from harness.store.database import DEFAULT_PATH, SCHEMA_VERSION, Store, StoreError

__all__ = ["DEFAULT_PATH", "SCHEMA_VERSION", "Store", "StoreError"]
