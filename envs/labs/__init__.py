"""The concurrent-labs problem: its spec, duration laws, event engine, environments and rendering."""
