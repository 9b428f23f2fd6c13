"""The window fits a 1366x768 laptop screen: no panel may demand more (a row of controls, stacked plots)."""


def test_every_panel_fits_a_1366_by_768_screen(make_window, demo_project):
    w = make_window(demo_dir=demo_project)
    w.start()
    for i in range(w.tabs.count()):
        w.tabs.setCurrentIndex(i)
        hint = w.tabs.widget(i).minimumSizeHint()
        assert hint.width() <= 1300 and hint.height() <= 640, (w.tabs.tabText(i), hint)
    hint = w.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 740, hint


def test_first_window_size_shrinks_to_the_screen():
    from PySide6.QtCore import QRect

    from perceptlab._qt.main_window import default_size

    class Screen:
        def availableGeometry(self):
            return QRect(0, 0, 1366, 740)

    assert default_size(None) == (1400, 900)
    w, h = default_size(Screen())
    assert w <= 1366 and h <= 740
    assert default_size(type("Big", (), {"availableGeometry": lambda self: QRect(0, 0, 2560, 1440)})()) == (1400, 900)
