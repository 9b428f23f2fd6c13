"""The Analysis panel: pyqtgraph views of perceptlab.analysis results, and the worker calls behind them."""
