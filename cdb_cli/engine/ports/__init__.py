"""Ports: the small Protocols the engine talks through; adapters implement them at the edges."""
