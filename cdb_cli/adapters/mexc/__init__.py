"""The MEXC spot adapter: signed REST client, protobuf WebSocket client, and a local simulator.

Wire facts come from ../shared/mexc_api.md; the section numbers in docstrings refer to it.
"""
