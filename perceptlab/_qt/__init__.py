"""The PySide6 desktop app: main window, panels, widgets and workers (DESIGN §1: the only Qt code).

Widgets stay thin: they collect settings, call the engine (``perceptlab.engine``, ``perceptlab.data``,
``perceptlab.analysis``) in worker threads (``workers.Job``) and show what comes back.
"""
