"""Will Qt's window-system plugin load? Checked before the QApplication exists, because when it does not,
Qt aborts the process (``qFatal``) with a message that names only one of the missing libraries.

On Linux the desktop uses Qt's ``xcb`` platform plugin (``libqxcb.so``), which links about fifteen
X11/xcb libraries that a minimal Debian or Ubuntu install lacks. :func:`missing_xcb_libraries` asks
``ldd`` which of them cannot be found, and :func:`platform_hint` turns the answer into the exact
``apt-get`` command. Nothing here imports Qt; it only locates the installed PySide6 files.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Every Debian/Ubuntu package the xcb platform plugin of the PySide6 wheel needs (besides libc and
#: libstdc++), found with ``ldd libqxcb.so`` + ``dpkg -S`` on Debian 12. The README's install line.
XCB_PACKAGES = (
    "libegl1", "libgl1", "libfontconfig1", "libdbus-1-3", "libglib2.0-0", "libxkbcommon0",
    "libxkbcommon-x11-0", "libx11-xcb1", "libxcb-cursor0", "libxcb-icccm4", "libxcb-image0",
    "libxcb-keysyms1", "libxcb-randr0", "libxcb-render-util0", "libxcb-shape0", "libxcb-shm0",
    "libxcb-sync1", "libxcb-xfixes0", "libxcb-xkb1",
)

#: soname prefix -> the Debian/Ubuntu package that provides it
SONAME_PACKAGES = {
    "libEGL.so": "libegl1", "libGL.so": "libgl1", "libOpenGL.so": "libopengl0", "libGLX.so": "libglx0",
    "libfontconfig.so": "libfontconfig1", "libfreetype.so": "libfreetype6", "libdbus-1.so": "libdbus-1-3",
    "libglib-2.0.so": "libglib2.0-0", "libgthread-2.0.so": "libglib2.0-0",
    "libxkbcommon.so": "libxkbcommon0", "libxkbcommon-x11.so": "libxkbcommon-x11-0",
    "libX11-xcb.so": "libx11-xcb1", "libX11.so": "libx11-6", "libxcb.so": "libxcb1",
    "libxcb-cursor.so": "libxcb-cursor0", "libxcb-icccm.so": "libxcb-icccm4", "libxcb-image.so": "libxcb-image0",
    "libxcb-keysyms.so": "libxcb-keysyms1", "libxcb-randr.so": "libxcb-randr0",
    "libxcb-render-util.so": "libxcb-render-util0", "libxcb-render.so": "libxcb-render0",
    "libxcb-shape.so": "libxcb-shape0", "libxcb-shm.so": "libxcb-shm0", "libxcb-sync.so": "libxcb-sync1",
    "libxcb-xfixes.so": "libxcb-xfixes0", "libxcb-xkb.so": "libxcb-xkb1", "libxcb-util.so": "libxcb-util1",
    "libxcb-xinput.so": "libxcb-xinput0", "libSM.so": "libsm6", "libICE.so": "libice6",
}


def apt_command(packages) -> str:
    return "sudo apt-get install " + " ".join(dict.fromkeys(packages))


def xcb_plugin() -> Path | None:
    """``.../PySide6/Qt/plugins/platforms/libqxcb.so`` of the installed PySide6, or None."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return path if path.is_file() else None


def missing_xcb_libraries(plugin: Path | None = None, ldd: str | None = None) -> list[str] | None:
    """The sonames the xcb plugin needs and the dynamic loader cannot find ([] when none); None when this
    cannot be checked (no plugin file, no ``ldd``)."""
    plugin = plugin or xcb_plugin()
    ldd = ldd or shutil.which("ldd")
    if plugin is None or ldd is None:
        return None
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    missing = [line.split("=>")[0].strip() for line in out.splitlines() if "not found" in line]
    return list(dict.fromkeys(missing))


def packages_for(sonames) -> list[str]:
    """The Debian/Ubuntu packages providing ``sonames`` (longest matching prefix; unknown ones as-is)."""
    out = []
    for so in sonames:
        match = max((k for k in SONAME_PACKAGES if so.startswith(k)), key=len, default=None)
        out.append(SONAME_PACKAGES[match] if match else so)
    return list(dict.fromkeys(out))


def uses_xcb(env=None) -> bool:
    """Whether Qt will try the xcb plugin: Linux, and QT_QPA_PLATFORM unset or naming xcb first."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "").strip()
    if not platform:
        return not env.get("WAYLAND_DISPLAY")  # Qt prefers wayland where a compositor is running
    return platform.split(";")[0].split(":")[0] == "xcb"


def platform_hint(env=None, missing: list[str] | None = None, check=missing_xcb_libraries) -> str | None:
    """A message naming the fix when the window cannot open on this machine, else None."""
    env = os.environ if env is None else env
    if not uses_xcb(env):
        return None
    if missing is None:
        missing = check()
    if missing:
        return (f"error: the desktop window cannot open: Qt's xcb platform plugin needs {', '.join(missing)}, "
                f"which this machine lacks. Install with\n    {apt_command(packages_for(missing))}\n"
                f"(all the plugin needs: {apt_command(XCB_PACKAGES)}).\n"
                "The headless subcommands work without them (perceptlab --help).")
    if not env.get("DISPLAY"):
        return ("error: no display: DISPLAY is not set, so the desktop window has nowhere to open. Run "
                "perceptlab from a desktop session, under `xvfb-run perceptlab`, or with "
                "QT_QPA_PLATFORM=offscreen for a window nobody sees; the headless subcommands need no "
                "display (perceptlab --help).")
    return None


def fatal_hint(message: str) -> str | None:
    """For a Qt fatal message about the platform plugin: the fix to print before Qt aborts."""
    if "platform plugin" not in message:
        return None
    missing = missing_xcb_libraries() or []
    hint = platform_hint(missing=missing) if missing else None
    return hint or ("error: Qt could not open a window (see Qt's message above). On Debian/Ubuntu install "
                    f"{apt_command(XCB_PACKAGES)}; elsewhere try QT_QPA_PLATFORM=offscreen, or use the "
                    "headless subcommands (perceptlab --help).")
