"""`moodindex model ...`: the models the indexer runs.  Inspect and evaluate the emotion model;
fetch or add the face detector's weights.  (`models fetch/add`, the old spelling, still works.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from indexer.cli.context import AppContext, MoodindexError
from indexer.cli.options import text_json_option


def _load_model(app: AppContext, model_path: Path | None, threads: int | None):
    """The model from --model, else the settings' `model`, else the bundled one."""
    from indexer.vision.emotion import EmotionModel, ModelError

    path = model_path or app.settings.model
    try:
        return EmotionModel(path, threads=threads or app.settings.threads)
    except ModelError as exc:
        raise MoodindexError(str(exc)) from exc


@click.group("model")
def model_group() -> None:
    """The emotion classifier (info, eval) and the face detector's weights (fetch, add)."""


@click.group("models", hidden=True, deprecated="Use `moodindex model fetch` or `moodindex model add`.")
def models_group() -> None:
    """Deprecated spelling of `moodindex model fetch/add`."""


@model_group.command("info")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A .tflite model instead of the configured/bundled one.")
@text_json_option()
@click.pass_obj
def info_cmd(app: AppContext, model_path: Path | None, fmt: str) -> None:
    """Name, version, size, classes, input shape and quantization of the model."""
    info = _load_model(app, model_path, None).info()
    if fmt == "json":
        click.echo(json.dumps(info, indent=2))
        return
    rows = [
        ("name", info["name"]),
        ("version", info["version"]),
        ("id", info["model_id"]),
        ("file", info["path"]),
        ("size", f"{info['size_bytes']:,} bytes ({info['size_bytes'] / 2**20:.2f} MiB)"),
        ("classes", ", ".join(info["classes"])),
        ("input shape", "x".join("N" if d == -1 else str(d) for d in info["input_shape"])
         + f" {info['input_dtype']}"),
        ("output", info["output"]),
        ("quantization", info["quantization"]),
        ("flip TTA", "on" if info["tta"] else "off"),
        ("runtime", f"{info['runtime']}, {info['threads']} thread(s)"),
    ]
    if "val_accuracy" in info:
        rows.append(("val accuracy", f"{100 * info['val_accuracy']:.1f}% (FER-2013 PublicTest)"))
    if info.get("training_finished") is False:
        rows.append(("note", f"provisional model (training epoch {info.get('checkpoint_epoch')})"))
    for key, value in rows:
        click.echo(f"{key + ':':<14}{value}")


@model_group.command("eval")
@click.argument("npz", type=click.Path(path_type=Path))
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A .tflite model instead of the configured/bundled one.")
@text_json_option()
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate a fixed random sample of N faces.")
@click.option("--threads", type=click.IntRange(min=1), help="Interpreter threads [default: settings, 1].")
@click.option("--tta/--no-tta", default=None, help="Horizontal-flip test-time augmentation [default: the model's].")
@click.option("--ferplus", "ferplus_npz", type=click.Path(path_type=Path),
              help="FER+ votes aligned with NPZ: also the accuracy on faces with a clear FER+ majority.")
@click.pass_obj
def eval_cmd(app: AppContext, npz: Path, model_path: Path | None, fmt: str, limit: int | None,
             threads: int | None, tta: bool | None, ferplus_npz: Path | None) -> None:
    """Accuracy of the model on labelled faces in NPZ (`images` uint8 Nx48x48, `labels` 0..6)."""
    from indexer.vision.evaluate import DatasetError, load_ferplus_majority, load_npz, summarise

    try:
        data = load_npz(npz, limit=limit)
        n_file = int(load_npz(npz).labels.shape[0]) if ferplus_npz else 0
        majority = load_ferplus_majority(ferplus_npz, data.rows, n_file) if ferplus_npz else None
    except DatasetError as exc:
        raise MoodindexError(str(exc)) from exc
    model = _load_model(app, model_path, threads)
    use_tta = model.tta if tta is None else tta
    model.predict(data.images[:1], tta=use_tta)  # warm-up, so the timing is steady-state
    t0 = time.perf_counter()
    probs = model.predict(data.images, tta=use_tta)
    seconds = time.perf_counter() - t0
    result = summarise(data.labels, probs, model.classes)
    result.update(ms_per_face=round(1000.0 * seconds / len(data.images), 4), model=model.model_id, tta=use_tta,
                  threads=model.threads, file=str(npz))
    if majority is not None:
        clear = summarise(majority[majority >= 0], probs[majority >= 0], model.classes)
        result["ferplus_majority"] = {k: clear[k] for k in ("n", "accuracy", "balanced_accuracy")}
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    _print_report(result)


def _print_report(r: dict) -> None:
    classes = r["classes"]
    click.echo(f"{r['file']}: {r['n']} faces, model {r['model']}{' (flip TTA)' if r['tta'] else ''}")
    click.echo(f"accuracy {100 * r['accuracy']:.2f}%  balanced {100 * r['balanced_accuracy']:.2f}%  "
               f"macro-F1 {r['macro_f1']:.3f}  {r['ms_per_face']:.3f} ms/face ({r['threads']} thread(s))")
    if fp := r.get("ferplus_majority"):
        click.echo(f"FER+ clear majority ({fp['n']} faces): accuracy {100 * fp['accuracy']:.2f}%  "
                   f"balanced {100 * fp['balanced_accuracy']:.2f}%")
    click.echo("")
    click.echo(f"{'class':<10}{'precision':>10}{'recall':>8}{'f1':>7}{'n':>6}")
    for name in classes:
        c = r["per_class"][name]
        click.echo(f"{name:<10}{100 * c['precision']:>9.1f}%{100 * c['recall']:>7.1f}%{c['f1']:>7.3f}{c['support']:>6}")
    click.echo("")
    click.echo("confusion (rows true, columns predicted):")
    click.echo(" " * 10 + "".join(f"{name[:7]:>8}" for name in classes))
    for name, row in zip(classes, r["confusion"], strict=True):
        click.echo(f"{name:<10}" + "".join(f"{v:>8}" for v in row))


@click.command("fetch")
@click.argument("name", type=click.Choice(["yunet"]))
@click.option("--url", help="Download from this mirror instead of OpenCV Zoo.")
@click.option("--sha256", "sha256", help="Expected checksum (needed with a --url of other weights).")
def fetch_cmd(name: str, url: str | None, sha256: str | None) -> None:
    """Download YuNet from OpenCV Zoo (pinned sha256) into the data folder: the only network use."""
    from indexer.vision import detector_install as di
    from indexer.vision.faces import DetectorError

    try:
        dest = di.fetch_yunet(url or di.YUNET_URL, sha256 or di.YUNET_SHA256)
    except DetectorError as exc:
        raise MoodindexError.from_load_failure(exc) from exc
    click.echo(f"installed {name} at {dest}; `--detector auto` now uses it")


@click.command("add")
@click.argument("name", type=click.Choice(["yunet"]))
@click.argument("path", type=click.Path(path_type=Path))
def add_cmd(name: str, path: Path) -> None:
    """Install a local copy of the YuNet ONNX weights (checked to load first)."""
    from indexer.vision.detector_install import add_yunet
    from indexer.vision.faces import DetectorError

    try:
        dest = add_yunet(path)
    except DetectorError as exc:
        raise MoodindexError.from_load_failure(exc) from exc
    click.echo(f"installed {name} at {dest}; `--detector auto` now uses it")


def register(group: click.Group) -> None:
    for command in (fetch_cmd, add_cmd):
        model_group.add_command(command)
        models_group.add_command(command)
    group.add_command(model_group)
    group.add_command(models_group)
