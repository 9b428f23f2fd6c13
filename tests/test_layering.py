"""DESIGN §1: nothing outside _qt imports Qt; data/ and analysis/ import no torch at module level."""

import subprocess
import sys
import textwrap
from pathlib import Path

import perceptlab

PKG = Path(perceptlab.__file__).parent


def _modules(sub: str) -> list[str]:
    return [
        "perceptlab." + ".".join(p.relative_to(PKG).with_suffix("").parts)
        for p in sorted((PKG / sub).rglob("*.py"))
        if p.name != "__init__.py"
    ]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def test_engine_and_data_import_with_qt_absent():
    mods = _modules("engine") + _modules("data") + _modules("analysis") + _modules("align") + _modules("cli")
    code = f"""
        import sys, importlib
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'superqt', 'shiboken6', 'qtpy'):
                    raise ImportError('Qt is blocked in this test: ' + name)
        sys.meta_path.insert(0, Block())
        for m in {mods!r}:
            importlib.import_module(m)
        print('imported', len({mods!r}))
    """
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert "imported" in res.stdout


def test_data_and_analysis_do_not_import_torch():
    mods = _modules("data") + _modules("analysis")
    code = f"""
        import sys, importlib
        for m in {mods!r}:
            importlib.import_module(m)
        bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]
        print('torch loaded' if bad else 'clean')
    """
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("clean")


def test_no_qt_imports_outside_qt_package():
    offenders = []
    for path in PKG.rglob("*.py"):
        if "_qt" in path.relative_to(PKG).parts:
            continue
        for line in path.read_text().splitlines():
            s = line.strip()
            if s.startswith(("import ", "from ")) and any(q in s.split()[1] for q in ("PySide6", "pyqtgraph", "superqt")):
                offenders.append(f"{path}: {s}")
    assert not offenders, offenders
