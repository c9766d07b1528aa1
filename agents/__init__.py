"""agents of labsched."""
