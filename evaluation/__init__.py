"""evaluation of labsched."""
