"""Export formats, one module each, registered in :data:`mtlkit.export.FORMATS`."""
