"""Pictures benchmark: one uploaded 12-megapixel camera photo processed into the sizes pages show.

Budget (issue 15): a 12-megapixel JPEG is checked and made into its sizes in <= 1.5 s; if that is
longer than a request should wait, the work moves to a Celery task.

It draws a 4000 x 3000 photo-like JPEG (gradients and noise, so it compresses like a photo, about
4 MB at quality 90), then times, taking the median of ``--repeat`` runs, on one core:

- check: ``image_open_checked`` (header, format, size and pixel limits: no decoding);
- cover: check + ``image_renditions`` for a cover (16:9 crop; 400, 800, 1600 wide; WebP + JPEG);
- gallery: the same for a gallery picture (its own aspect ratio);
- stored: ``image_store`` end to end into a FileSystemStorage in a temporary folder (what an
  upload request does before its short transaction);
- refusals: a 50-megapixel PNG and a truncated copy of the photo, refused.

    .venv/bin/python benchmarks/images.py [--repeat 7]
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 1.5


def photo_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(15)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], axis=-1).astype(np.int16)
    pixels = (pixels + rng.integers(-24, 24, pixels.shape)).clip(0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def median_seconds(action, repeat: int) -> tuple[float, float]:
    """Return the median wall-clock and CPU seconds of ``action`` (CPU time is what a busy machine can't inflate)."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement; medians are reported")
    args = parser.parse_args()
    os.environ.setdefault("SECRET_KEY", "benchmark-only-insecure-key")
    os.environ["DJANGO_SETTINGS_MODULE"] = "crowdfund_site.settings"
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.files.storage import FileSystemStorage
    from PIL import Image

    from crowdfund_site.images import (
        COVER,
        GALLERY,
        ImageRejected,
        image_open_checked,
        image_renditions,
        image_store,
    )

    photo = photo_jpeg()
    huge = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(huge, "PNG")
    print(f"photo: 4000 x 3000 JPEG, {len(photo) / 1e6:.1f} MB; median of {args.repeat} runs")

    def refused(data: bytes) -> None:
        try:
            image_renditions(image_open_checked(io.BytesIO(data)), shape=COVER)
        except ImageRejected:
            return
        raise AssertionError("not refused")

    with tempfile.TemporaryDirectory() as folder:
        storage = FileSystemStorage(location=folder, base_url="/media/")
        results = {
            "check (header only)": median_seconds(lambda: image_open_checked(io.BytesIO(photo)), args.repeat),
            "cover sizes": median_seconds(
                lambda: image_renditions(image_open_checked(io.BytesIO(photo)), shape=COVER), args.repeat
            ),
            "gallery sizes": median_seconds(
                lambda: image_renditions(image_open_checked(io.BytesIO(photo)), shape=GALLERY), args.repeat
            ),
            "stored (cover, 6 files)": median_seconds(
                lambda: image_store(
                    upload=io.BytesIO(photo), shape=COVER, folder="bench", alt="Benchmark", storage=storage
                ),
                args.repeat,
            ),
            "refuse 50 MP PNG": median_seconds(lambda: refused(huge.getvalue()), args.repeat),
            "refuse truncated photo": median_seconds(lambda: refused(photo[: len(photo) // 2]), args.repeat),
        }
    print(f"{'':26s} {'wall':>8s} {'cpu':>8s}")
    for name, (wall, cpu) in results.items():
        print(f"{name:26s} {wall * 1000:6.0f} ms {cpu * 1000:6.0f} ms")
    worst = max(results[name][0] for name in ("cover sizes", "gallery sizes", "stored (cover, 6 files)"))
    verdict = "within" if worst <= BUDGET_SECONDS else "OVER"
    print(f"budget: <= {BUDGET_SECONDS:.1f} s per 12-megapixel upload (wall clock): {verdict} ({worst:.2f} s)")


if __name__ == "__main__":
    main()
