"""The pre-check that names the Debian packages Qt's xcb platform plugin lacks (no Qt needed)."""

import stat

from perceptlab._qt.platform_check import (
    XCB_PACKAGES,
    fatal_hint,
    missing_xcb_libraries,
    packages_for,
    platform_hint,
    uses_xcb,
)


def test_the_missing_sonames_map_to_their_packages():
    assert packages_for(["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"]) == [
        "libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0"]
    # the longest prefix wins: libxcb-render-util is not libxcb-render, nor libxcb
    assert packages_for(["libxcb-render-util.so.0", "libxcb.so.1"]) == ["libxcb-render-util0", "libxcb1"]
    assert set(packages_for(["libxcb-icccm.so.4"])) <= set(XCB_PACKAGES)


def test_the_hint_prints_the_exact_apt_command():
    hint = platform_hint({"DISPLAY": ":0"}, missing=["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1\n" in hint
    assert "libxcb-cursor0" in hint  # the full list too
    assert platform_hint({"DISPLAY": ":0"}, missing=[]) is None


def test_no_display_and_other_platforms():
    assert "DISPLAY is not set" in platform_hint({}, missing=[])
    assert platform_hint({"QT_QPA_PLATFORM": "offscreen"}, check=lambda: ["libxcb.so.1"]) is None
    assert uses_xcb({"QT_QPA_PLATFORM": "xcb"}) and not uses_xcb({"QT_QPA_PLATFORM": "offscreen"})
    assert not uses_xcb({"WAYLAND_DISPLAY": "wayland-0"})
    assert fatal_hint("QFont: something else") is None


def test_missing_libraries_are_read_from_ldd(tmp_path):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    ldd = tmp_path / "ldd"
    ldd.write_text("#!/bin/sh\necho '\tlibxcb-icccm.so.4 => not found'\necho '\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)'\n"
                   "echo '\tlibxcb-icccm.so.4 => not found'\n")
    ldd.chmod(ldd.stat().st_mode | stat.S_IEXEC)
    assert missing_xcb_libraries(plugin, str(ldd)) == ["libxcb-icccm.so.4"]
    assert missing_xcb_libraries(tmp_path / "absent.so", "/nonexistent/ldd") is None
