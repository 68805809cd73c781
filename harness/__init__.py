"""The timing harness: sessions, worker processes, backends, the store.

Knows nothing about specific architectures; ``archs`` builds them and ``reports`` explains them.
"""

from importlib import metadata

try:
    __version__ = metadata.version("accelbench")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"
