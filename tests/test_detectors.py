"""Face detectors: YuNet with the shared test weights, installing it (fetch over loopback HTTP, add)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from indexer.vision.faces import HaarDetector, YuNetDetector, available_detectors, make_detector, plausible, yunet_path
from tests.photo_factory import compose, dev_faces


@pytest.fixture()
def http_server(tmp_path: Path):
    """A static file server on 127.0.0.1 (this machine has no internet; neither do tests)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_yunet_finds_pasted_faces(yunet_onnx, dev_faces_dir):
    img, truth = compose(dev_faces(dev_faces_dir, "happy", 3), size=(1280, 720), face_px=260)
    dets = YuNetDetector(yunet_onnx).detect(img, 24)
    assert len(dets) == 3
    assert all(0 <= d.confidence <= 1 for d in dets)


def test_haar_ships_with_opencv():
    assert HaarDetector().version.startswith("haar")
    assert available_detectors() == ["haar"]
    assert make_detector("auto").name == "haar"


def test_implausible_boxes_rejected():
    shape = (1000, 1000)
    assert plausible((100, 100, 80, 90), shape, 24)
    assert not plausible((100, 100, 10, 10), shape, 24)      # tiny
    assert not plausible((100, 100, 200, 40), shape, 24)     # not face-shaped
    assert not plausible((950, 950, 200, 200), shape, 24)    # mostly outside


def test_model_add_installs_and_auto_picks_yunet(run_cli, yunet_onnx):
    result = run_cli("model", "add", "yunet", yunet_onnx)
    assert result.exit_code == 0, result.output
    assert yunet_path().read_bytes() == yunet_onnx.read_bytes()
    assert make_detector("auto").name == "yunet"


def test_old_models_spelling_still_works_with_a_deprecation_note(run_cli, yunet_onnx):
    result = run_cli("models", "add", "yunet", yunet_onnx)
    assert result.exit_code == 0, result.output
    assert "deprecated" in result.stderr and "moodindex model add" in result.stderr
    assert yunet_path().read_bytes() == yunet_onnx.read_bytes()
    assert "models" not in run_cli("--help").stdout.split()  # hidden from the command list


def test_model_add_refuses_what_does_not_load(run_cli, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x01" * 500)
    result = run_cli("model", "add", "yunet", junk)
    assert result.exit_code == 1 and "not a usable YuNet model" in result.stderr
    assert not yunet_path().exists()
    assert "no such file" in run_cli("model", "add", "yunet", tmp_path / "nope.onnx").stderr


def test_model_fetch_checks_the_pinned_checksum(run_cli, http_server, yunet_onnx):
    root, base = http_server
    (root / "yunet.onnx").write_bytes(yunet_onnx.read_bytes())
    # default pin is OpenCV Zoo's 2023mar file; the shared test copy differs, so it must be refused
    result = run_cli("model", "fetch", "yunet", "--url", f"{base}/yunet.onnx")
    assert result.exit_code == 1 and "checksum mismatch" in result.stderr
    assert not yunet_path().exists()
    digest = hashlib.sha256(yunet_onnx.read_bytes()).hexdigest()
    result = run_cli("model", "fetch", "yunet", "--url", f"{base}/yunet.onnx", "--sha256", digest)
    assert result.exit_code == 0, result.output
    assert yunet_path().read_bytes() == yunet_onnx.read_bytes()
    assert YuNetDetector().detect(compose([], size=(320, 240))[0], 24) == []  # installed and loads


def test_model_fetch_reports_network_errors(run_cli, http_server):
    _, base = http_server
    result = run_cli("model", "fetch", "yunet", "--url", f"{base}/missing.onnx")
    assert result.exit_code == 1 and "download" in result.stderr and "404" in result.stderr
    assert not yunet_path().exists()
    assert not list(yunet_path().parent.glob(".yunet-*"))  # no temp files left behind


def test_models_fetch_offline_says_how_to_use_models_add(run_cli):
    """No network (here: nothing listens on the port): the error names `model add` and the file to bring."""
    import socket

    with socket.socket() as sock:  # a free loopback port, closed again: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/face_detection_yunet_2023mar.onnx"
    result = run_cli("models", "fetch", "yunet", "--url", url)
    assert result.exit_code == 1 and "failed" in result.stderr
    assert "moodindex model add yunet PATH/TO/face_detection_yunet_2023mar.onnx" in result.stderr
    assert url in result.stderr and "Traceback" not in result.stderr
    assert not yunet_path().exists()
