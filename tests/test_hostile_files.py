"""Files that are not photos at all: FIFOs, sockets, devices, endless or huge files.

None may hang a run, blow its memory or stop it; each is recorded as skipped with its reason
and, unless it is a regular file, never opened."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from indexer.db.models import Photo
from indexer.db.session import open_db
from indexer.media.fingerprint import fingerprint_file
from indexer.media.source import UnreadablePhoto, read_photo
from tests.photo_factory import background, write_photo

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 4 << 30  # address space of the whole run (parent and each worker): OpenCV + models fit in ~1.5 GiB


def _hostile_folder(folder: Path) -> dict[str, str]:
    """Good photos beside a FIFO, a socket, /dev/zero and a big junk file, all named like photos;
    returns name -> what its row must say."""
    folder.mkdir(parents=True)
    for i in range(3):
        write_photo(folder / f"ok{i}.jpg", background(640, 480, seed=i))
    os.mkfifo(folder / "pipe.jpg")
    os.symlink("/dev/zero", folder / "zero.jpg")
    os.symlink(folder / "pipe.jpg", folder / "link-to-pipe.jpg")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "socket.jpg"))
    sock.close()
    (folder / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(3 << 20))
    return {"pipe.jpg": "FIFO", "link-to-pipe.jpg": "FIFO", "zero.jpg": "character device",
            "socket.jpg": "socket", "junk.png": "over the max_file_bytes limit of 2.0 MiB"}


def test_read_photo_never_opens_what_is_not_a_regular_file(tmp_path):
    expected = _hostile_folder(tmp_path / "d")
    for name, reason in expected.items():
        with pytest.raises(UnreadablePhoto, match=reason.split(" of ")[0]) as info:
            read_photo(tmp_path / "d" / name, max_bytes=2 << 20)
        assert info.value.skipped
        with pytest.raises(OSError):  # the fingerprint (moves, metadata edits) reads the same way
            fingerprint_file(tmp_path / "d" / name, max_bytes=2 << 20)
    photo = tmp_path / "d" / "ok0.jpg"
    assert read_photo(photo) == photo.read_bytes()
    with pytest.raises(UnreadablePhoto, match="too large"):
        read_photo(photo, max_bytes=photo.stat().st_size - 1)


def test_a_file_that_lies_about_its_size_is_still_read_bounded():
    """/proc files say 0 bytes and then deliver: the limit counts the bytes read, not the size claimed."""
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("no /proc")
    with pytest.raises(UnreadablePhoto, match="more than the max_file_bytes limit"):
        read_photo(status, max_bytes=16)
    assert b"Name:" in read_photo(status)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_bounded(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run a command under MEMORY_LIMIT in its own process group; on a hang, kill the whole
    group (its workers too) and fail."""
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_limit_memory, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{' '.join(argv[3:6])}... hung (killed after {timeout:.0f} s)")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_index_skips_fifos_devices_sockets_and_huge_files(tmp_path, dev_faces_dir):
    """`mkfifo p.jpg` hung `index` forever and `ln -s /dev/zero z.jpg` read until the memory ran out
    (MemoryError, exit 1, nothing stored).  Now: a bounded run, every file accounted for."""
    expected = _hostile_folder(tmp_path / "d")
    config, db = tmp_path / "cfg.toml", tmp_path / "index.db"
    config.write_text(f'detector = "haar"\nmax_file_bytes = {2 << 20}\n')
    done = run_bounded([sys.executable, "-m", "indexer", "--db", str(db), "--config", str(config), "index",
                        str(tmp_path / "d"), "--workers", "2", "--format", "json"], timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    summary = json.loads(done.stdout)
    assert (summary["new"], summary["skipped"], summary["failed"]) == (3, len(expected), 0)
    engine = open_db(db)
    with Session(engine) as s:
        rows = {Path(p.path).name: p for p in s.scalars(select(Photo))}
    engine.dispose()
    assert {n for n, r in rows.items() if r.status == "ok"} == {"ok0.jpg", "ok1.jpg", "ok2.jpg"}
    for name, reason in expected.items():
        assert rows[name].status == "skipped" and reason in rows[name].error, (name, rows[name].error)
    assert "never opened" in rows["zero.jpg"].error


# -- the pixel guard: max_pixels, from the header, before any decoder runs -----------------------
def _heic_claiming(width: int, height: int) -> bytes:
    """A real 640x480 HEIC whose `ispe` box (the size every reader trusts) claims width x height:
    11000x12000 fits in 8 KB, like the 30 KB bomb that was decoded at 1.99 GB RSS."""
    pillow_heif = pytest.importorskip("pillow_heif", reason="the [heif] extra is not installed")
    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(background(640, 480)[:, :, ::-1].copy())).save(buf, quality=50)
    data = bytearray(buf.getvalue())
    at = data.find(b"ispe") + 8  # box type, then version+flags (4 bytes), then width and height
    assert struct.unpack(">II", data[at:at + 8]) == (640, 480)
    data[at:at + 8] = struct.pack(">II", width, height)
    return bytes(data)


def test_heic_bomb_is_refused_from_its_header():
    from indexer.media.decode import DecodeError, decode

    data = _heic_claiming(11_000, 12_000)
    assert len(data) < 30_000
    with pytest.raises(DecodeError, match=r"refused: 11000x12000 is 132 MP, over the 1 MP limit"):
        decode(data, ".heic", max_pixels=1_000_000)


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_max_pixels_is_the_only_pixel_limit():
    """Pillow refused anything over 179 MP before max_pixels was even looked at: a larger
    max_pixels had no effect, and its message was Pillow's.  Now the header's size reaches our guard."""
    from indexer.media.decode import DecodeError, decode, probe

    assert probe(_png_claiming(15_000, 15_000)) == ("PNG", 15_000, 15_000)  # 225 MP: Pillow's error before
    with pytest.raises(DecodeError, match=r"225 MP, over the 200 MP limit \(max_pixels"):
        decode(_png_claiming(15_000, 15_000), ".png", max_pixels=200_000_000)
    with pytest.raises(DecodeError, match="corrupt or truncated PNG"):  # past the guard: the decoder ran
        decode(_png_claiming(15_000, 15_000), ".png", max_pixels=300_000_000)


def test_raw_preview_is_guarded_too(monkeypatch):
    """A RAW file's embedded JPEG preview goes through the same header check before OpenCV decodes it."""
    from indexer.media import decode as decode_mod

    preview = io.BytesIO()
    Image.fromarray(background(1600, 1200)).save(preview, "JPEG")
    monkeypatch.setattr(decode_mod, "_decode_raw_preview", lambda data: (preview.getvalue(), 1))
    with pytest.raises(decode_mod.DecodeError, match="1600x1200 is 2 MP, over the 1 MP limit"):
        decode_mod.decode(b"raw bytes", ".nef", max_pixels=1_000_000)
    assert decode_mod.decode(b"raw bytes", ".nef", max_pixels=2_000_000).image.size  # under the limit: decoded


def test_limits_are_settings_with_clear_bounds(tmp_path):
    from indexer.config import ConfigError, load_settings

    cfg = tmp_path / "cfg.toml"
    cfg.write_text("max_pixels = 1000000000\nmax_file_bytes = 5000000\n")
    settings = load_settings(cfg, env={})
    assert (settings.max_pixels, settings.max_file_bytes) == (1_000_000_000, 5_000_000)
    assert load_settings(None, env={}).max_file_bytes == 1 << 30
    cfg.write_text("max_pixels = 2000000000\n")  # past OpenCV's own ceiling: it would not be the limit that counts
    with pytest.raises(ConfigError, match="at most 1073741824"):
        load_settings(cfg, env={})
    cfg.write_text("max_file_bytes = 0\n")
    with pytest.raises(ConfigError, match="max_file_bytes must be a positive integer"):
        load_settings(cfg, env={})


def test_webp_canvas_is_checked_before_pillow_allocates_it():
    """Pillow's WebP opener allocates the whole canvas (16383x16383x4 = 1 GiB) before any size check."""
    from indexer.media.decode import DecodeError, _webp_size, decode

    image = Image.fromarray(background(300, 200))
    for kwargs in ({"lossless": True}, {"quality": 80}, {"quality": 80, "exif": b"Exif\0\0II*\0"}):
        buf = io.BytesIO()
        image.save(buf, "WEBP", **kwargs)
        assert _webp_size(buf.getvalue()) == (300, 200), kwargs  # VP8L, VP8 and VP8X headers
    data = bytearray(buf.getvalue())  # the VP8X one
    assert data[12:16] == b"VP8X"
    data[24:30] = (16383 - 1).to_bytes(3, "little") * 2
    with pytest.raises(DecodeError, match=r"16383x16383 is 268 MP, over the 200 MP limit \(max_pixels"):
        decode(bytes(data), ".webp", max_pixels=200_000_000)
