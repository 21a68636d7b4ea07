# Sourced by the study-server benches: a throwaway PostgreSQL server in a temporary folder, stopped
# and removed on exit. Sets work (the folder), port, and as_pg (runs a command as postgres when
# root), psql (psql against it, -Atq, more options after) and url DB (a storage URL for DB).
# Needs Debian's postgresql package (tests/setup.sh installs it).
pgbin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
work=$(mktemp -d)
as_pg() { if [ "$(id -u)" -eq 0 ]; then (cd "$work" && runuser -u postgres -- "$@"); else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$pgbin/initdb" -D "$work/pg" -A trust > /dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start \
  -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_connections=300" > /dev/null
trap 'as_pg "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop > /dev/null; rm -rf "$work"' EXIT
psql() { as_pg "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -Atq "$@"; }
url() { echo "postgresql://postgres@127.0.0.1:$port/$1"; }
