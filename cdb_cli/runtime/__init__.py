"""The long-lived loop (``cdb run``): components as asyncio tasks, supervision, clean shutdown.

It sits between the commands and the engine: it picks nothing itself (the kernel does), reads the
wall clock (the engine never does) and talks to the store and the bus through their ports.
"""
