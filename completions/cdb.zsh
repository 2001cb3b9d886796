#compdef cdb

_cdb_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _CDB_COMPLETE=complete_zsh cdb)
}

compdef _cdb_completion cdb
