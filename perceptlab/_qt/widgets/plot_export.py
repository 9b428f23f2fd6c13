"""Export a pyqtgraph plot to PNG, SVG or PDF.

PNG uses pyqtgraph's ImageExporter on the widget's whole scene (titles, colour bars included). SVG tries
pyqtgraph's SVGExporter first; pyqtgraph 0.14 cannot parse the path data that Qt 6.12 writes (every
plot fails with "not enough values to unpack"), so Qt's QSvgGenerator then renders the scene instead.
PDF renders the same scene through ``QPdfWriter`` (QtGui, part of PySide6-Essentials), so lines and
text stay vectors.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt
from PySide6.QtGui import QPageLayout, QPageSize, QPainter, QPdfWriter
from PySide6.QtWidgets import QFileDialog, QMenu, QToolButton, QWidget

from perceptlab.errors import PerceptLabError

FORMATS = {"png": "PNG image (*.png)", "svg": "SVG vector image (*.svg)", "pdf": "PDF document (*.pdf)"}


def export_plot(widget, path: str | Path) -> Path:
    """Write the scene of a pyqtgraph ``GraphicsView`` (PlotWidget, GraphicsLayoutWidget) to ``path``;
    the format follows the suffix (.png, .svg, .pdf)."""
    import pyqtgraph.exporters as pgx  # noqa: PLC0415

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise PerceptLabError(f"cannot export a plot as {path.suffix or 'a file without suffix'}",
                              "use .png, .svg or .pdf")
    scene = widget.scene()
    try:
        if fmt == "png":
            exporter = pgx.ImageExporter(scene)
            width = int(max(scene.sceneRect().width(), 1) * 2)
            exporter.parameters()["width"] = width
            exporter.export(str(path))
        elif fmt == "svg":
            try:
                pgx.SVGExporter(scene).export(str(path))
            except (ValueError, IndexError):
                # pyqtgraph's SVG post-processing cannot parse some paths that Qt 6 writes; render the
                # scene with Qt's own SVG generator instead (vectors too, just less tidy)
                _export_svg(scene, path, _dpi(widget))
        else:
            _export_pdf(scene, path, _dpi(widget))
    except OSError as exc:
        raise PerceptLabError(f"cannot write {path}: {exc.strerror or exc}", "pick a folder you can write to") from exc
    if not path.is_file() or path.stat().st_size == 0:
        raise PerceptLabError(f"exporting the plot to {path} wrote nothing", "pick another folder or format")
    return path


def _dpi(widget) -> int:
    """The widget's logical DPI: pyqtgraph caches axes as QPictures recorded at this resolution, and a
    QPicture played on a device of another resolution is scaled (axes drawn at 72/96 of their size)."""
    try:
        return int(round(widget.logicalDpiX())) or 96
    except (AttributeError, RuntimeError):
        return 96


def _export_pdf(scene, path: Path, dpi: int = 96) -> None:
    source = scene.sceneRect()
    w, h = max(source.width(), 1.0), max(source.height(), 1.0)
    writer = QPdfWriter(str(path))
    writer.setResolution(dpi)
    writer.setCreator("PerceptLab")
    writer.setTitle(path.stem)
    writer.setPageSize(QPageSize(QSizeF(w * 72 / dpi, h * 72 / dpi), QPageSize.Unit.Point, "plot"))
    writer.setPageMargins(QMarginsF(0, 0, 0, 0), QPageLayout.Unit.Point)
    painter = QPainter(writer)
    if not painter.isActive():
        raise PerceptLabError(f"cannot write {path}", "pick a folder you can write to")
    try:
        target = QRectF(0, 0, writer.width(), writer.height())
        scene.render(painter, target, source, Qt.AspectRatioMode.KeepAspectRatio)
    finally:
        painter.end()


def _export_svg(scene, path: Path, dpi: int = 96) -> None:
    from PySide6.QtSvg import QSvgGenerator  # noqa: PLC0415

    source = scene.sceneRect()
    gen = QSvgGenerator()
    gen.setResolution(dpi)
    gen.setFileName(str(path))
    gen.setSize(source.size().toSize())
    gen.setViewBox(QRectF(0, 0, source.width(), source.height()))
    gen.setTitle(path.stem)
    gen.setDescription("exported by PerceptLab")
    painter = QPainter(gen)
    try:
        scene.render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        painter.end()


class ExportButton(QToolButton):
    """A tool button with a PNG / SVG / PDF menu that exports ``widget`` through a file dialog.

    ``errors`` receives PerceptLabErrors (the panel shows them); ``exported`` is called with the path.
    """

    def __init__(self, widget, name: str, parent: QWidget | None = None, on_error=None, on_exported=None):
        super().__init__(parent)
        self._widget, self._name = widget, name
        self._on_error, self._on_exported = on_error, on_exported
        self.setText("Export…")
        self.setToolTip("Export this plot as PNG, SVG or PDF")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        # the style's menu arrow was drawn over the text ("Expor⌄t"): no arrow, the ellipsis says there is more
        self.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        menu = QMenu(self)
        for fmt in FORMATS:
            menu.addAction(fmt.upper(), lambda fmt=fmt: self.export_dialog(fmt))
        self.setMenu(menu)
        self.last_dir = Path.home()

    def export_dialog(self, fmt: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export plot as {fmt.upper()}",
                                              str(self.last_dir / f"{self._name}.{fmt}"), FORMATS[fmt])
        if not path:
            return None
        if not path.lower().endswith(f".{fmt}"):
            path += f".{fmt}"
        try:
            out = export_plot(self._widget, path)
        except PerceptLabError as exc:
            if self._on_error:
                self._on_error(exc)
            return None
        self.last_dir = out.parent
        if self._on_exported:
            self._on_exported(out)
        return out
