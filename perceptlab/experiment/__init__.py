"""Experiments: designs shared by the in-app runner and the exports, and active stimulus selection."""
