"""The cyclic garbage collector held off while a large import runs.

An import makes a few container objects per row (rows, outcomes, candidates) and keeps them all
to the end; none is in a cycle. As they pile up, the collector's passes walk them again and
again, for nothing: on a 100,000-row import that was most of the time. Reference counting
frees everything as usual; only the search for cycles waits.

The switch is process-wide, so it is counted: the collector runs again when the last import
holding it off ends (and only if it was running when the first began). Other requests served
meanwhile also run without cyclic collection for that while; what cycles they leave is
collected after.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def held_off() -> Iterator[None]:
    """No cyclic garbage collection in the process for the block (see the module)."""
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
