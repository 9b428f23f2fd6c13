"""The Curate panel: library gallery, detail pane, undoable curation commands, export dialog."""
