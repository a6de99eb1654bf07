"""index, classify, show, list, status, errors."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from indexer.cli.context import AppContext, MoodindexError, emit_json
from indexer.cli.options import detector_option, no_upgrade_option, text_json_option, workers_option


def register(group: click.Group) -> None:
    group.add_command(index_cmd)
    group.add_command(classify_cmd)
    group.add_command(show_cmd)
    group.add_command(list_cmd)
    group.add_command(status_cmd)
    group.add_command(errors_cmd)


@click.command("index")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@workers_option()
@click.option("--force", is_flag=True, help="Re-analyse every photo, changed or not.")
@detector_option()
@no_upgrade_option()
@text_json_option("Summary format.")
@click.option("--cluster", "cluster", metavar="tcp://HOST:PORT", envvar="MOODINDEX_CLUSTER",
              help="Analyse on this Dask cluster (workers need the photos at the same paths and the same "
                   "model) [env MOODINDEX_CLUSTER; default: cluster setting, else this machine].")
@click.pass_obj
def index_cmd(app: AppContext, paths: tuple[Path, ...], workers: int | None, force: bool, detector: str | None,
              no_upgrade: bool, fmt: str, cluster: str | None) -> None:
    """Index photo folders (or files): new, changed, moved and deleted photos.

    Unchanged photos are skipped, unless an older detector or model analysed them (after a
    `model fetch`/`model add`): those are re-analysed, newest first (--no-upgrade skips it);
    moved ones keep their results; a missing or unmounted folder keeps its photos in the
    index.  Ctrl-C stops cleanly; run again to resume."""
    import threading

    from indexer.cluster import ClusterError
    from indexer.scan import Indexer
    from indexer.vision.errors import DetectorError, ModelError

    settings = app.settings.with_overrides(workers=workers, detector=detector, cluster=cluster or None)
    roots = paths or settings.roots
    if not roots:
        raise MoodindexError("no folders given: `moodindex index PATH...` or set roots in the config file", 2)
    _refuse_unknown_missing(app, paths)
    stop = threading.Event()  # one for the scan and its executor: stopping one stops both
    indexer = Indexer(app.engine, settings, force=force, upgrade=not no_upgrade, stop=stop,
                      executor=_cluster_executor(settings, stop))
    bar = _progress_bar(app)
    warned: list[tuple[str, tuple[str, ...]]] = []  # shown with -v once the bar is gone, never through it

    def on_progress(p) -> None:  # noqa: ANN001 (scan.Progress)
        if p.warnings:
            warned.append((p.path, p.warnings))
        if bar:
            bar.update(p)

    try:
        summary = indexer.scan(roots, on_progress=on_progress)
    except KeyboardInterrupt:
        raise MoodindexError("interrupted: finished photos are saved; run the same command to resume", 130) from None
    except (ModelError, DetectorError) as exc:
        raise MoodindexError.from_load_failure(exc) from exc
    except ClusterError as exc:
        raise MoodindexError(str(exc)) from None
    finally:
        if bar:
            bar.close()
        indexer.close()
    if app.verbosity > 0:
        _echo_warnings(warned)
    if fmt == "json":
        emit_json(summary.as_dict())
        return
    if app.verbosity >= 0:
        for why in summary.unreachable_roots:
            click.echo(f"kept, not scanned: {why}", err=True)
        click.echo(summary.line())
        if summary.failed or summary.problems:
            click.echo("see `moodindex errors` for the reasons", err=True)
        elif summary.warned:
            click.echo("see `moodindex errors` for the warnings (or run with -v)", err=True)
        if summary.processed and _fallback_detector(settings):
            click.echo(FALLBACK_NOTE, err=True)


def _echo_warnings(warned: list[tuple[str, tuple[str, ...]]]) -> None:
    """-v: what libraries said about each photo, one line per message, naming the file."""
    for path, messages in warned:
        for message in messages:
            click.echo(f"{click.format_filename(path)}: warning: {message}", err=True)


FALLBACK_NOTE = ("note: faces were found with the fallback Haar detector, which misses many; "
                 "`moodindex model fetch yunet` (or `moodindex model add yunet PATH` offline) installs YuNet, "
                 "and the next `moodindex index` re-analyses these photos with it")


def _fallback_detector(settings) -> bool:  # noqa: ANN001 (Settings)
    """Did this run use Haar only because nothing better is installed?"""
    from indexer.vision.identity import available_detectors

    return settings.detector in ("auto", "haar") and "yunet" not in available_detectors()


def _refuse_unknown_missing(app: AppContext, paths: tuple[Path, ...]) -> None:
    """A path argument that does not exist is a typo (usage error), unless the index holds photos
    there: then it is an unplugged drive, and the scan keeps its rows and says so."""
    import os

    missing = [p for p in paths if not os.path.exists(p)]
    if not missing:
        return
    from indexer.db.location import exists as index_exists

    known: set[Path] = set()
    if index_exists(app.settings.db):
        from indexer.db.photos import has_live_photos_under
        from indexer.db.read import find_photo
        from indexer.db.session import session_scope
        from indexer.domain import STATUS_DELETED
        from indexer.paths import normalise_path

        with session_scope(app.engine) as s:
            known = {p for p in missing if (row := find_photo(s, normalise_path(p))) is not None
                     and row.status != STATUS_DELETED or has_live_photos_under(app.engine, normalise_path(p))}
    unknown = [p for p in missing if p not in known]
    if unknown:
        from indexer.paths import display_path

        raise MoodindexError("; ".join(f"{display_path(p)}: no such file or folder" for p in unknown), 2)


def _cluster_executor(settings, stop):  # noqa: ANN001, ANN202 - a DaskExecutor, or None: the local pool
    if not settings.cluster:
        return None
    from indexer.cluster import DaskExecutor

    return DaskExecutor(settings, stop, settings.cluster)


class _Bar:
    """tqdm on a terminal only: quiet when piped or with -q."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=0, unit="photo", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def update(self, p) -> None:  # noqa: ANN001 (scan.Progress)
        if self._bar.total != p.total:
            self._bar.total = p.total
        self._bar.set_postfix(faces=p.faces, refresh=False)
        self._bar.update(p.done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def _progress_bar(app: AppContext) -> _Bar | None:
    return _Bar() if sys.stderr.isatty() and app.verbosity >= 0 else None


@click.command("classify")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@detector_option()
@text_json_option()
@click.pass_obj
def classify_cmd(app: AppContext, files: tuple[Path, ...], detector: str | None, fmt: str) -> None:
    """Detect faces and emotions in FILES without touching the index.  Exit status 1 when any
    file could not be analysed (each says why), 2 when one does not exist."""
    from indexer.paths import path_json
    from indexer.pipeline import Analyzer
    from indexer.vision.errors import DetectorError, ModelError

    st = app.settings.with_overrides(detector=detector)
    try:
        analyzer = Analyzer.from_settings(st)
    except (ModelError, DetectorError) as exc:
        raise MoodindexError.from_load_failure(exc) from exc
    out = []
    for f in files:
        res = analyzer.analyze(f) if f.is_file() else None
        error = None if res is None else res.error
        if res is None:
            error = "not a file" if f.exists() else "no such file"
        out.append({**path_json(str(f)), "faces": [x.as_dict() for x in res.faces] if res else [], "error": error})
    if fmt == "json":
        emit_json(out)
    else:
        for item in out:
            if item["error"]:
                click.echo(f"{item['path']}: error: {item['error']}")
                continue
            faces = ", ".join(f"{x['emotion']} {max(x['scores'].values()):.2f}" for x in item["faces"]) or "no faces"
            click.echo(f"{item['path']}: {faces}")
    if any(item["error"] for item in out):
        raise click.exceptions.Exit(1)


@click.command("show")
@click.argument("photo", type=click.Path(path_type=Path))
@text_json_option()
@click.pass_obj
def show_cmd(app: AppContext, photo: Path, fmt: str) -> None:
    """Everything the index knows about one photo."""
    from sqlalchemy.orm import Session

    from indexer.db.corrections import photo_corrections
    from indexer.db.read import find_photo, photo_dict
    from indexer.domain import DATE_SOURCE_TEXT
    from indexer.paths import normalise_path

    with Session(app.engine) as s:
        row = find_photo(s, normalise_path(photo))
        if row is None:
            raise MoodindexError(f"{photo}: not in the index (run `moodindex index` on its folder)")
        data = photo_dict(row)
        data["photo_corrections"] = photo_corrections(s, row)
    if fmt == "json":
        emit_json(data)
        return
    click.echo(data["path"])
    date = data["taken_at"] and f"{data['taken_at']} ({DATE_SOURCE_TEXT.get(data['date_source'], data['date_source'])})"
    for label, value in (("status", data["status"]), ("error", data["error"]), ("taken", date),
                         ("camera", data["camera"]), ("size", f"{data['width']}x{data['height']}"),
                         ("model", data["model"]), ("detector", data["detector"])):
        if value:
            click.echo(f"  {label:9} {value}")
    if data["people"]:
        click.echo(f"  {'people':9} {', '.join(data['people'])}")
    for message in data["warnings"]:
        click.echo(f"  {'warning':9} {message}")
    for i, face in enumerate(data["face_details"]):
        ranked = sorted(face["scores"].items(), key=lambda kv: -kv[1])
        who = f"  ({face['person']})" if face["person"] else ""
        if face["corrected"]:
            said = f"{face['emotion']} (yours; model: " + "  ".join(f"{k} {v:.2f}" for k, v in ranked[:2]) + ")"
        else:
            said = "  ".join(f"{k} {v:.2f}" for k, v in ranked[:3])
        click.echo(f"  face {i}: box {face['box']} conf {face['confidence']:.2f}  {said}{who}")
    for c in data["photo_corrections"]:
        said = c["emotion"] if c["shows"] else f"not {c['emotion']}"
        how = f"a tag you {'added' if c['shows'] else 'removed'} in a photo manager"
        click.echo(f"  {'yours':9} {said}: applies to the whole photo, not one face ({how})")


@click.command("list")
@click.option("--format", "fmt", type=click.Choice(["paths", "paths0", "json"]), default="paths", show_default=True,
              help="paths: one a line; paths0: each ended by NUL (xargs -0), for names that hold a newline; "
                   "both give each name's exact bytes.  json: records (see the README for names that are not UTF-8).")
@click.pass_obj
def list_cmd(app: AppContext, fmt: str) -> None:
    """Every indexed photo."""
    from sqlalchemy.orm import Session

    from indexer.cli.context import echo_paths
    from indexer.db.read import iter_photos, photo_dict

    with Session(app.engine) as s:
        if fmt in ("paths", "paths0"):
            echo_paths((p.path for p in iter_photos(s)), nul=fmt == "paths0")
        else:
            emit_json([photo_dict(p, with_faces=False) for p in iter_photos(s)])


@click.command("status")
@text_json_option()
@click.option("--check", is_flag=True,
              help="Also load the detector and the emotion model: says which runtime runs them, or why one "
                   "cannot load (slower: loads OpenCV and the model runtimes).")
@click.pass_obj
def status_cmd(app: AppContext, fmt: str, check: bool) -> None:
    """Counts, the detector and model in use, the last run.  Fast: the detector and model are
    described from their files; --check loads them."""
    from sqlalchemy.orm import Session

    from indexer.db.location import display
    from indexer.db.photos import counts
    from indexer.db.runs import last_run
    from indexer.summary import changes_text
    from indexer.vision.identity import available_detectors, model_summary

    data: dict = counts(app.engine)
    data["db"] = display(app.settings.db)
    available = available_detectors()
    wanted = app.settings.detector
    data["detector"] = {"configured": wanted, "in_use": available[0] if wanted == "auto" else wanted,
                        "available": available}
    if check and data["detector"]["in_use"] == "yunet":
        _check_yunet(data["detector"])
    if "yunet" not in available:
        data["detector"]["hint"] = ("using the Haar cascade; for better face detection run "
                                    "`moodindex model fetch yunet` (or `moodindex model add yunet PATH`)")
    data["model"] = _loaded_model_info(app) if check else model_summary(app.settings)
    data["older_analysis"] = _older_analysis(app)
    with Session(app.engine) as s:
        data["last_run"] = last_run(s)
    if fmt == "json":
        emit_json(data)
        return
    click.echo(f"index     {data['db']}")
    click.echo(f"photos    {data['photos']}  faces {data['faces']}  errors {data['errors']}  "
               f"skipped {data['skipped']}" + (f"  with warnings {data['warned']}" if data["warned"] else ""))
    det = data["detector"]
    runtime = f" on {det['runtime']}" if det.get("runtime") else ""
    click.echo(f"detector  {det['in_use']}{runtime} (available: {', '.join(det['available'])})")
    for key in ("error", "hint"):
        if det.get(key):
            click.echo(f"          {det[key]}")
    m = data["model"]
    click.echo(f"model     {m.get('name', '')} {m.get('version', '')} {m.get('error', '')}".strip())
    if data["older_analysis"]:
        n = data["older_analysis"]
        click.echo(f"upgrade   {n} photo{'s' if n != 1 else ''} analysed by an older detector or model: "
                   "the next `moodindex index` re-analyses them")
    run = data["last_run"]
    if run:
        sm = run["summary"]
        shown = ("new", "changed", "moved", "deleted", "failed")
        click.echo(f"last run  {run['finished_at']}: {changes_text(sm, shown)}")


def _check_yunet(det: dict) -> None:
    """status --check: load YuNet; the runtime depends on the file as well as on what is installed."""
    from indexer.vision.faces import DetectorError, YuNetDetector
    from indexer.vision.yunet_ort import available

    try:
        runtime = YuNetDetector().runtime
    except DetectorError as exc:
        det["error"] = str(exc)
        return
    det["runtime"] = runtime
    if runtime.startswith("opencv"):
        det["hint"] = ("this YuNet file runs only at its declared size on ONNX Runtime; OpenCV Zoo's "
                       "face_detection_yunet_2026may.onnx (`moodindex model add yunet PATH`) runs ~3x faster"
                       if available() else "pip install onnxruntime: YuNet runs ~3x faster on it")


def _older_analysis(app: AppContext) -> int:
    """Photos that an older detector or model than the installed ones analysed."""
    from indexer.db.photos import analysed_by
    from indexer.vision.identity import installed, is_older

    now = installed(app.settings)
    if now is None:
        return 0
    return sum(n for (detector, model), n in analysed_by(app.engine).items() if is_older(detector, model, now))


def _loaded_model_info(app: AppContext) -> dict:
    from indexer.vision.emotion import EmotionModel, ModelError

    try:
        m = EmotionModel(app.settings.model)
    except ModelError as exc:
        return {"error": str(exc)}
    return {"name": m.name, "version": m.version, "id": m.model_id, "path": str(m.path),
            "quantization": m.quantization, "runtime": m.runtime}


@click.command("errors")
@text_json_option()
@click.pass_obj
def errors_cmd(app: AppContext, fmt: str) -> None:
    """Photos that could not be analysed, and folders that could not be read, with the reason;
    then photos indexed with warnings (what a library said while reading them).  A photo on which a
    worker process died is retried once by the next `index` ("retry": true)."""
    from sqlalchemy.orm import Session

    from indexer.db.read import error_rows, warned_rows
    from indexer.db.runs import last_run
    from indexer.domain import STATUS_RETRY
    from indexer.paths import path_json

    with Session(app.engine) as s:
        items = [{**path_json(p.path), "kind": "failed", "status": p.status, "error": p.error or p.status,
                  "retry": p.status == STATUS_RETRY, "warnings": list(p.warnings or ())} for p in error_rows(s)]
        run = last_run(s)
        warned = [{**path_json(p.path), "kind": "warnings", "status": p.status, "error": None, "retry": False,
                   "warnings": list(p.warnings)} for p in warned_rows(s)]
    for path, reason in (run or {}).get("summary", {}).get("problems", []):
        items.append({**path_json(path), "kind": "folder", "status": "folder", "error": reason, "retry": False,
                      "warnings": []})
    items += warned
    if fmt == "json":
        emit_json(items)
        return
    for it in items:
        if it["kind"] != "warnings":
            click.echo(f"{it['path']}: {'[will be retried] ' if it['retry'] else ''}{it['error']}")
            for message in it["warnings"]:
                click.echo(f"    warning: {message}")
    if warned:
        click.echo(f"indexed with warnings ({len(warned)} photo{'s' if len(warned) != 1 else ''}):")
        for it in warned:
            for message in it["warnings"]:
                click.echo(f"{it['path']}: warning: {message}")
    if not items:
        click.echo("no errors or warnings", err=True)
