"""The background indexer: file-system events -> the same `Indexer` calls as `moodindex index`.

Why it is shaped like this:

- watchdog's observer threads only *record* events (cheap name filters, then a deque);
  everything that touches files, models or the database runs in the one thread that
  calls `Watcher.run`, so the index sees a single writer and events are applied in order.
- A photo is indexed only once it is complete: after a close-write with nothing since
  (inotify), or when renamed into place, or else once its size and mtime have not changed
  for `settle` seconds (polling, or files that appeared without a close).  A file that is
  open for writing waits for its close (or `stall` seconds without a write).
- Events are coalesced per path and flushed in batches: a burst becomes one log line, a
  file written in many chunks is indexed once, and a deleted folder is one `remove`.
- Moves and renames re-point rows (`Indexer.move`), no model runs; a non-photo (an `.xmp`
  sidecar, the index's own files) never reaches the models.
- Roots that vanish (unmounted drives) are paused, never emptied, and rescanned when they
  come back.  When live events cannot be trusted (inotify watch limit, queue overflow, a
  watcher thread that died) it says so once and falls back to periodic full rescans.
- What happened while it was not running is found by `Indexer.scan` on start; since the
  index is only written in whole-photo transactions, kill -9 loses nothing.

The rooms, one job each: `pending.py` (files waiting to be complete, folder operations, the
settle and coalesce rules; no clock of its own), `roots.py` (which root a path is in, what a
recheck means), `observer.py` (watchdog set-up and the hooks into its threads), `watcher.py`
(the loop, with an injected clock).
"""

from indexer.watch.observer import EVENT_TYPES, WATCH_LIMIT_HINT, make_observer
from indexer.watch.pending import Op, PendingFile, PendingFiles, coalesce
from indexer.watch.roots import WatchError
from indexer.watch.watcher import Watcher, WatchOptions, WatchTotals

__all__ = ["EVENT_TYPES", "WATCH_LIMIT_HINT", "Op", "PendingFile", "PendingFiles", "WatchError", "WatchOptions",
           "WatchTotals", "Watcher", "coalesce", "make_observer"]
