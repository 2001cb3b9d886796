"""Services: the operator's requests that run once and return (issue 23).

Each answers one command and is built from the kernel's parts: the governance gate of
``cdb run --live`` (:mod:`.governance`), reconciliation with the venue (:mod:`.reconcile`), the
paper account rebuilt from the store (:mod:`.restore`), the loop's daily jobs (:mod:`.jobs`),
``cdb replay`` (:mod:`.replay`), ``cdb systemcheck`` (:mod:`.systemcheck`) and ``cdb explain``
(:mod:`.why`). The loops that keep running live in :mod:`cdb_cli.runtime`.
"""
