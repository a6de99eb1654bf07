"""Names from metadata: face regions written by exiftool in the layouts digiKam, Lightroom and
Windows use, read back by `media.regions`, and `index` tying them to the faces it finds."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fixtures.tagkit import need_exiftool
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from indexer.db.models import Face, Photo, PhotoPerson
from indexer.db.session import open_db
from indexer.media.regions import (
    MATCH_IOU,
    displayed_box,
    match_regions,
    named_regions,
    packet_regions,
)
from indexer.media.xmp import parse_xmp
from tests.photo_factory import background, compose, dev_faces, rotate_for_orientation, write_photo

Region = tuple[str, tuple[float, float, float, float]]  # name, normalised left/top/w/h of the stored image


def mwg_arg(regions: list[Region], applied_to: tuple[int, int] | None) -> str:
    """exiftool's MWG region structure: centre x/y, w/h, normalised (digiKam and Lightroom)."""
    items = ",".join(f"{{Area={{X={x + w / 2:.6f},Y={y + h / 2:.6f},W={w:.6f},H={h:.6f},Unit=normalized}},"
                     f"Name={name},Type=Face}}" for name, (x, y, w, h) in regions)
    dims = f"AppliedToDimensions={{W={applied_to[0]},H={applied_to[1]},Unit=pixel}}," if applied_to else ""
    return f"-XMP-mwg-rs:RegionInfo={{{dims}RegionList=[{items}]}}"


def mp_arg(regions: list[Region]) -> str:
    """exiftool's Microsoft region structure: "left, top, width, height" (Windows Photo Gallery)."""
    items = ",".join(f"{{PersonDisplayName={name},Rectangle={x:.6f}|, {y:.6f}|, {w:.6f}|, {h:.6f}}}"
                     for name, (x, y, w, h) in regions)
    return f"-XMP-MP:RegionInfoMP={{Regions=[{items}]}}"


def exiftool(target: Path, *args: str) -> None:
    need_exiftool()
    subprocess.run(["exiftool", "-q", "-overwrite_original", *args, str(target)], check=True, capture_output=True)


def digikam_layout(regions: list[Region], size: tuple[int, int]) -> list[str]:
    """What digiKam writes for named faces: MWG and Microsoft regions plus its People/ tags."""
    return [mwg_arg(regions, size), mp_arg(regions), *(f"-XMP-digiKam:TagsList+=People/{n}" for n, _ in regions)]


def read(path: Path, orientation: int | None = None, shape: tuple[int, int] | None = None):
    regions, notes = named_regions(path, path.read_bytes(), orientation, shape)
    assert not notes
    return {r.name: (r.box, r.source) for r in regions}


def close(a, b, tol: float = 1e-4) -> bool:
    return all(abs(x - y) < tol for x, y in zip(a, b, strict=True))


ANNA = ("Anna Lind", (0.10, 0.20, 0.20, 0.25))
BEN = ("Ben", (0.60, 0.30, 0.15, 0.20))


def test_digikam_layout_in_the_file(tmp_path):
    path = write_photo(tmp_path / "a.jpg", background(400, 300))
    exiftool(path, *digikam_layout([ANNA, BEN], (400, 300)))
    got = read(path)
    assert set(got) == {"Anna Lind", "Ben"}  # MWG and MP name the same faces: no duplicates
    assert close(got["Anna Lind"][0], ANNA[1]) and got["Anna Lind"][1] == "mwg"
    assert close(got["Ben"][0], BEN[1])


def test_lightroom_layout_in_a_sidecar_only(tmp_path):
    """Lightroom keeps a raw file's metadata in `photo.xmp`; the photo itself has no names."""
    path = write_photo(tmp_path / "IMG_0042.jpg", background(400, 300))
    exiftool(tmp_path / "IMG_0042.xmp", mwg_arg([ANNA], (400, 300)))
    got = read(path)
    assert list(got) == ["Anna Lind"] and close(got["Anna Lind"][0], ANNA[1])


def test_sidecar_wins_over_the_file(tmp_path):
    path = write_photo(tmp_path / "a.jpg", background(400, 300))
    exiftool(path, mwg_arg([BEN], None))
    exiftool(tmp_path / "a.jpg.xmp", mwg_arg([ANNA], None))
    assert list(read(path)) == ["Anna Lind"]


def test_microsoft_layout(tmp_path):
    path = write_photo(tmp_path / "a.jpg", background(400, 300))
    exiftool(path, mp_arg([ANNA, BEN]))
    got = read(path)
    assert close(got["Anna Lind"][0], ANNA[1]) and got["Anna Lind"][1] == "microsoft"
    assert close(got["Ben"][0], BEN[1])


@pytest.mark.parametrize(("orientation", "expected"), [
    (1, (0.10, 0.20, 0.20, 0.25)),
    (3, (0.70, 0.55, 0.20, 0.25)),   # 180: (1-x-w, 1-y-h)
    (6, (0.55, 0.10, 0.25, 0.20)),   # 90 CW: (1-y-h, x) with w/h swapped
    (8, (0.20, 0.70, 0.25, 0.20)),   # 90 CCW: (y, 1-x-w)
])
def test_orientation_turns_regions_like_pixels(tmp_path, orientation, expected):
    """MWG regions relate to the stored image; the index keeps boxes in the displayed one."""
    stored = (400, 300)
    path = write_photo(tmp_path / "a.jpg", background(*stored), orientation=orientation)
    exiftool(path, mwg_arg([ANNA], stored))
    shape = stored if orientation in (1, 3) else stored[::-1]
    assert close(read(path, orientation, shape)["Anna Lind"][0], expected)


def test_region_written_in_the_displayed_frame_is_not_turned_twice(tmp_path):
    """A writer that applied the orientation itself says so with AppliedToDimensions of the
    displayed shape (portrait here, while the stored pixels are landscape)."""
    path = write_photo(tmp_path / "a.jpg", background(400, 300), orientation=6)
    exiftool(path, mwg_arg([ANNA], (300, 400)))
    assert close(read(path, 6, (300, 400))["Anna Lind"][0], ANNA[1])


def test_displayed_box_matches_the_decoder_turn():
    """The turn agrees with how tests store rotated photos (photo_factory.rotate_for_orientation)."""
    import numpy as np

    upright = np.zeros((30, 40), np.uint8)
    upright[6:12, 4:12] = 255  # a box at x=4, y=6, w=8, h=6 of the displayed image
    for orientation in (3, 6, 8):
        stored = rotate_for_orientation(upright, orientation)
        ys, xs = np.nonzero(stored)
        sh, sw = stored.shape
        box = (xs.min() / sw, ys.min() / sh, (xs.max() + 1 - xs.min()) / sw, (ys.max() + 1 - ys.min()) / sh)
        assert close(displayed_box(box, orientation), (4 / 40, 6 / 30, 8 / 40, 6 / 30))


def test_exiv2_layout_attributes_and_descriptions():
    """digiKam writes through Exiv2, which spells structures as rdf:Description with attributes."""
    packet = parse_xmp(b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
      xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
      xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
      xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#"
      xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#">
     <rdf:Description rdf:about="">
      <mwg-rs:Regions rdf:parseType="Resource">
       <mwg-rs:AppliedToDimensions stDim:w="4128" stDim:h="3096" stDim:unit="pixel"/>
       <mwg-rs:RegionList><rdf:Bag>
        <rdf:li><rdf:Description mwg-rs:Name="Kate" mwg-rs:Type="Face">
         <mwg-rs:Area stArea:x="0.625" stArea:y="0.453327" stArea:w="0.116764" stArea:h="0.18637"
                      stArea:unit="normalized"/></rdf:Description></rdf:li>
        <rdf:li><rdf:Description mwg-rs:Name="Rex" mwg-rs:Type="Pet">
         <mwg-rs:Area stArea:x="0.2" stArea:y="0.2" stArea:w="0.1" stArea:h="0.1"/></rdf:Description></rdf:li>
       </rdf:Bag></mwg-rs:RegionList>
      </mwg-rs:Regions></rdf:Description></rdf:RDF></x:xmpmeta>""")
    (kate,) = packet_regions(packet)  # the pet is not a person
    assert kate.name == "Kate" and kate.applied_to == (4128, 3096)
    assert close(kate.box, (0.625 - 0.116764 / 2, 0.453327 - 0.18637 / 2, 0.116764, 0.18637))


def test_bad_regions_are_skipped_not_fatal(tmp_path):
    path = write_photo(tmp_path / "a.jpg", background(400, 300))
    exiftool(path, mp_arg([("Nobody", (1.5, 1.5, 0.1, 0.1)), ("Flat", (0.1, 0.1, 0.0, 0.2))]))
    (tmp_path / "a.jpg.xmp").write_text("<x:xmpmeta")  # a broken sidecar: a note, then the file
    regions, notes = named_regions(path, path.read_bytes(), None, None)
    assert regions == () and notes and "a.jpg.xmp" in notes[0]


def test_matching_takes_best_overlap_first_and_respects_the_threshold():
    faces = [(100, 100, 100, 100), (190, 100, 100, 100)]
    # the first region overlaps both faces; the second is exactly face 1
    regions = [(150, 100, 100, 100), (190, 100, 100, 100), (600, 600, 50, 50)]
    assert match_regions(regions, faces, MATCH_IOU) == [0, 1, None]
    assert match_regions([(100, 100, 100, 100)], [(160, 160, 100, 100)], MATCH_IOU) == [None]  # IoU 0.087


# -- end to end: `index` on real photos ---------------------------------------------------------

def _people(db_path: Path, path: Path) -> tuple[dict[str, int | None], list[int]]:
    """{name: face idx or None} and the face row ids of one photo."""
    engine = open_db(db_path)
    with Session(engine) as s:
        photo = s.scalar(select(Photo).options(selectinload(Photo.faces)).where(Photo.path == str(path)))
        idx = {f.id: f.idx for f in photo.faces}
        rows = s.scalars(select(PhotoPerson).options(selectinload(PhotoPerson.person))
                         .where(PhotoPerson.photo_id == photo.id)).all()
        out = {r.person.name: (None if r.face_id is None else idx[r.face_id]) for r in rows}
        ids = [f.id for f in s.scalars(select(Face).where(Face.photo_id == photo.id).order_by(Face.idx))]
    engine.dispose()
    return out, ids


def _index(run_cli, folder: Path) -> dict:
    result = run_cli("index", folder, "--workers", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture()
def two_faces(dev_faces_dir: Path) -> tuple:
    """A 2400x1800 scene with two real faces, and where they are."""
    return compose(dev_faces(dev_faces_dir, "happy", 2), seed=11)


def _normalised(box, width: int, height: int) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return x / width, y / height, w / width, h / height


def test_index_matches_names_on_a_rotated_photo(run_cli, tmp_path, db_path, yunet_installed, two_faces):
    """digiKam layout in a photo stored turned (orientation 6), plus a named region where no face
    was detected: both faces get their names, the third person stays on the photo."""
    img, boxes = two_faces
    stored = rotate_for_orientation(img, 6)
    path = write_photo(tmp_path / "lib" / "turned.jpg", stored, orientation=6)
    sh, sw = stored.shape[:2]

    def stored_frame(box):  # displayed (x, y, w, h) -> stored frame, orientation 6
        x, y, w, h = box
        return _normalised((y, 2400 - x - w, h, w), sw, sh)

    names = [("Anna Lind", stored_frame(boxes[0])), ("Ben Okafor", stored_frame(boxes[1])),
             ("Cleo", stored_frame((1100, 100, 200, 200)))]  # background: no face there
    exiftool(path, *digikam_layout(names, (sw, sh)))
    _index(run_cli, path.parent)
    people, _ = _people(db_path, path)
    assert people == {"Anna Lind": 0, "Ben Okafor": 1, "Cleo": None}


def test_names_added_by_a_metadata_edit_run_no_model(run_cli, tmp_path, db_path, yunet_installed, two_faces,
                                                     worker_spy):
    """Lightroom writes names into the JPEG: the pixels are the same, so the faces stay (same rows)
    and only the names are read."""
    img, boxes = two_faces
    path = write_photo(tmp_path / "lib" / "party.jpg", img)
    _index(run_cli, path.parent)
    before, face_ids = _people(db_path, path)
    assert before == {} and len(face_ids) == 2
    exiftool(path, mwg_arg([("anna lind", _normalised(boxes[0], 2400, 1800))], (2400, 1800)))
    worker_spy.reset()
    summary = _index(run_cli, path.parent)
    assert summary["metadata_only"] == 1
    assert worker_spy.analysed == [str(path)] and worker_spy.predicted == [], "a metadata edit must not run the model"
    after, ids_after = _people(db_path, path)
    assert after == {"anna lind": 0} and ids_after == face_ids


def test_sidecar_only_names_at_first_index(run_cli, tmp_path, db_path, yunet_installed, two_faces):
    img, boxes = two_faces
    path = write_photo(tmp_path / "lib" / "IMG_7.jpg", img)
    exiftool(tmp_path / "lib" / "IMG_7.xmp", mwg_arg([("Ben Okafor", _normalised(boxes[1], 2400, 1800))],
                                                      (2400, 1800)))
    _index(run_cli, path.parent)
    assert _people(db_path, path)[0] == {"Ben Okafor": 1}
