#!/usr/bin/env bash
# Runs COMMAND with a throwaway PostgreSQL server of its own: a new cluster
# (Debian's postgresql package, initdb) in a temporary directory, reachable
# only over a unix socket there, stopped and removed afterwards whatever
# COMMAND does. COMMAND sees KONTOR_TEST_POSTGRES, a libpq connection string
# without dbname ("host=DIR port=PORT user=postgres"); tests make their own
# databases in it (throwaway: fsync is off). Exits with COMMAND's status.
#
#   tests/postgres.sh COMMAND [ARG...]
#
# As root, the server runs as the postgres user (PostgreSQL refuses root).
set -euo pipefail

prog=postgres.sh
(($# > 0)) || { echo "usage: $prog COMMAND [ARG...]" >&2; exit 2; }
[[ $1 == -h || $1 == --help ]] && { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }

bindir=
for d in /usr/lib/postgresql/*/bin; do [[ -x $d/initdb ]] && bindir=$d; done
[[ -n $bindir ]] || { echo "$prog: no PostgreSQL server (apt-get install postgresql)" >&2; exit 1; }

dir=$(mktemp -d /tmp/kontor-pg-XXXXXX)
as_owner=()
stop() {
  [[ -f $dir/data/postmaster.pid ]] &&
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap stop EXIT
if ((EUID == 0)); then
  chown postgres: "$dir"
  as_owner=(runuser -u postgres --)
fi
port=$((20000 + RANDOM % 20000))

# An ICU default collation (en-US), as a real server would have, not C: the
# store must not depend on the database's default order.
"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres \
  -E UTF8 --locale=C.UTF-8 --locale-provider=icu --icu-locale=en-US \
  >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; echo "$prog: initdb failed" >&2; exit 1; }
"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/server.log" \
  -o "-k $dir -p $port -c listen_addresses='' -c fsync=off" start >/dev/null ||
  { cat "$dir/server.log" >&2; echo "$prog: the server did not start" >&2; exit 1; }

export KONTOR_TEST_POSTGRES="host=$dir port=$port user=postgres"
set +e
"$@"
rc=$?
set -e
exit $rc
