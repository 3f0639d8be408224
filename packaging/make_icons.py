"""Make the executables' icons from the app's SVG icon (run once; the results are committed).

    QT_QPA_PLATFORM=offscreen python packaging/make_icons.py

resources/icons/app.svg -> app.png (1024 px, rendered by Qt's SVG renderer), and from that PNG
with Pillow: app.ico (Windows; 16 to 256 px) and app.icns (macOS; 16 to 1024 px).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
ICO_SIZES = [(s, s) for s in (16, 24, 32, 48, 64, 128, 256)]
ICNS_SIZES = [(s, s) for s in (16, 32, 64, 128, 256, 512, 1024)]


def render_png(svg: Path, png: Path, size: int = 1024) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    if not image.save(str(png)):
        raise SystemExit(f"make_icons.py: cannot write {png}")


def main() -> int:
    png = ICONS / "app.png"
    render_png(ICONS / "app.svg", png)
    with Image.open(png) as img:
        img = img.convert("RGBA")
        img.save(ICONS / "app.ico", sizes=ICO_SIZES)
        img.save(ICONS / "app.icns", sizes=ICNS_SIZES)
    for name in ("app.png", "app.ico", "app.icns"):
        print(f"{ICONS / name}: {(ICONS / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
