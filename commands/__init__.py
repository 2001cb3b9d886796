"""cdb's subcommands, one thin module each; shipped as ``cdb_cli.commands``."""
