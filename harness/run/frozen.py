"""Imported last by the fork server (``harness.run.forkserver.PRELOAD``): freezes the garbage
collector's view of everything preloaded.

Why: a forked worker shares the server's memory pages until it writes to them, and a garbage
collection in the worker walks (writes the headers of) every tracked object, so each worker
copied the pages of every preloaded module, torch._dynamo's 840 included. ``gc.freeze()`` moves
them to a permanent generation that no collection visits (the use Python's documentation gives
it: call it in the parent before forking without exec).
"""

import gc

gc.freeze()
