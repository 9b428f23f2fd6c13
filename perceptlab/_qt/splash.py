"""The start-up window: shown within a second of ``perceptlab``, before torch and the panels load.

A plain widget with the splash-screen window flag rather than ``QSplashScreen``, whose ``show()`` waits up
to a second for the window manager to report the window exposed (measured under Xvfb: 1.0 s)."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QWidget

from perceptlab import __version__

STAGES = 4


class Splash(QWidget):
    """A white card with the icon, the name, what is loading and a progress bar."""

    def __init__(self, stages: int = STAGES):
        pixmap = QPixmap(460, 200)
        pixmap.fill(QColor("white"))
        painter = QPainter(pixmap)
        icon = QApplication.windowIcon()
        if not icon.isNull():
            painter.drawPixmap(24, 24, icon.pixmap(72, 72))
        painter.setPen(QColor("#202020"))
        font = QFont(painter.font())
        font.setPointSize(20)
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(QRect(112, 28, 330, 40), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "PerceptLab")
        font.setPointSize(9)
        font.setBold(False)
        painter.setFont(font)
        painter.drawText(QRect(112, 66, 330, 44), Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap,
                         f"version {__version__}: images on the perceptual boundaries of neural classifiers")
        painter.setPen(QColor("#c0c0c0"))
        painter.drawRect(0, 0, 459, 199)
        painter.end()
        super().__init__(None, Qt.WindowType.SplashScreen | Qt.WindowType.FramelessWindowHint)
        self.pixmap = pixmap
        self.setFixedSize(pixmap.size())
        screen = QApplication.primaryScreen()
        if screen is not None:
            self.move(screen.availableGeometry().center() - self.rect().center())
        self.setWindowTitle("PerceptLab — starting")
        self.stages = stages
        self.done = 0
        self.text = "Starting…"

    def paintEvent(self, _event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self.pixmap)
        painter.setPen(QColor("#404040"))
        painter.drawText(QRect(24, 124, 412, 22), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self.text)
        bar = QRect(24, 154, 412, 12)
        painter.setPen(QColor("#a0a0a0"))
        painter.drawRect(bar)
        filled = QRect(bar.x() + 1, bar.y() + 1, int((bar.width() - 1) * self.done / max(self.stages, 1)), bar.height() - 1)
        painter.fillRect(filled, QColor("#2f6fd6"))
        painter.end()

    def show_painted(self, app: QApplication) -> None:
        """Show and paint now (the imports that follow block the event loop)."""
        self.show()
        self.raise_()
        self.repaint()
        app.processEvents()

    def step(self, text: str) -> None:
        """Announce the next stage; the bar shows the stages finished so far."""
        self.text = text
        self.repaint()
        QApplication.processEvents()
        self.done += 1

    def finish(self, window: QWidget) -> None:
        """Close once ``window`` is on screen."""
        self.close()
        self.deleteLater()
