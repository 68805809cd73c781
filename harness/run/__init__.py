"""Running a session: what to time and how, from a config to stored cells.

The flow, one module each: ``plan`` expands a config into comparison groups; ``session`` owns
a session's life (identity, store, signals, resume); ``coordinator`` times one group across
its backends' workers; ``client`` starts and talks to a worker process; ``worker`` is that
process; ``protocol`` is what they say to each other; ``workload`` is what a cell builds.
"""
