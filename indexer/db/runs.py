"""The runs table: one row per `index` pass or watcher rescan worth remembering (for `status`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from indexer.db.models import Run
from indexer.db.session import in_transaction


def record_run(engine: Engine, kind: str, roots: Sequence[object], summary: dict[str, Any], seconds: float) -> None:
    finished = datetime.now()
    in_transaction(engine, lambda s: s.add(Run(
        kind=kind, started_at=finished - timedelta(seconds=seconds), finished_at=finished,
        roots=json.dumps([str(r) for r in roots]), summary=json.dumps(summary))))


def last_run(s: Session) -> dict[str, Any] | None:
    run = s.scalar(select(Run).order_by(Run.id.desc()).limit(1))
    if run is None:
        return None
    return {"kind": run.kind, "started_at": run.started_at.isoformat(timespec="seconds"),
            "finished_at": run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
            "roots": json.loads(run.roots), "summary": json.loads(run.summary or "{}")}
