"""What catching library messages (indexer.media.capture) costs per photo.

Times, in the same run, an empty block with and without what the pipeline wraps around one photo
(`capture_messages()` with two `library_stderr()` blocks inside: decoding, face analysis), the same
with one C-library message written to fd 2, and a real decode of a 12 MP JPEG with and without it,
so the overhead can be compared with the work it wraps.  Prints microseconds per call.

    python benchmarks/warning_capture.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from indexer.media.capture import capture_messages, library_stderr
from indexer.media.decode import decode


def per_call_us(fn: Callable[[], object], repeat: int, rounds: int = 5) -> float:
    """Median over `rounds` of the mean time per call, in microseconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        times.append((time.perf_counter() - start) / repeat * 1e6)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2000)
    args = ap.parse_args()
    devnull = os.open(os.devnull, os.O_WRONLY)

    def bare() -> None:
        pass

    def captured() -> None:
        with capture_messages():
            with library_stderr():
                pass
            with library_stderr():
                pass

    def bare_message() -> None:
        os.write(devnull, b"Corrupt JPEG data: 3 extraneous bytes before marker 0xd9\n")

    def captured_message() -> None:
        with capture_messages():
            with library_stderr():
                os.write(2, b"Corrupt JPEG data: 3 extraneous bytes before marker 0xd9\n")
            with library_stderr():
                pass

    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(0, 255, (300, 400, 3), np.uint8), (4000, 3000), interpolation=cv2.INTER_CUBIC)
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()

    def decode_bare() -> None:
        decode(jpeg, ".jpg")

    def decode_captured() -> None:
        with capture_messages():
            with library_stderr():
                decode(jpeg, ".jpg")

    rows = [
        ("empty block", per_call_us(bare, args.repeat), per_call_us(captured, args.repeat)),
        ("one message to fd 2", per_call_us(bare_message, args.repeat), per_call_us(captured_message, args.repeat)),
        (f"decode a 12 MP JPEG ({len(jpeg) / 1e6:.1f} MB)", per_call_us(decode_bare, 20, 3),
         per_call_us(decode_captured, 20, 3)),
    ]
    print(f"{'per call':<34}{'bare us':>10}{'captured us':>13}{'overhead us':>13}")
    for name, plain, with_capture in rows:
        print(f"{name:<34}{plain:>10.1f}{with_capture:>13.1f}{with_capture - plain:>13.1f}")


if __name__ == "__main__":
    main()
