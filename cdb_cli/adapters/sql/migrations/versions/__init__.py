"""Migration revisions, applied in order by ``cdb db upgrade``."""
