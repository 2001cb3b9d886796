#!/bin/sh
# Run once by the postgres image at its first start (docker-compose.yml): the role cdb, which owns
# the database cdb and nothing else, with the password of deploy/compose.env.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v cdb_password="$CDB_POSTGRES_PASSWORD" <<'SQL'
CREATE ROLE cdb LOGIN PASSWORD :'cdb_password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE cdb OWNER cdb;
REVOKE ALL ON DATABASE cdb FROM PUBLIC;
SQL
