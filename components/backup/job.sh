# liftoff's scheduled backup: runs in the app's PostgreSQL image (the
# official one, or one with the same tools: pg_dump, pg_restore, psql,
# initdb, postgres and a POSIX shell with coreutils).
#   1. dump the app's database ($DATABASE_URL) into the backups volume;
#   2. restore drill (BACKUP_VERIFY=true): restore the dump into a scratch
#      server in this container and count every table's rows there;
#   3. write the metadata beside the dump, NAME.json, in liftoff's format;
#   4. keep the newest $BACKUP_RETAIN scheduled backups, delete the rest.
# A failed dump or drill deletes the new dump and fails the job: the older
# backups stay, and the job's failure shows in kubectl and liftoff status.
set -eu
dir=/backups
at=$(date -u +%Y%m%dT%H%M%SZ)
name="$STACK-$at-scheduled"
tmp="$dir/.$name.partial"
trap 'rm -f "$tmp"' EXIT
pg_dump -Fc --no-owner --no-acl "$DATABASE_URL" > "$tmp"
tables='{}'
migration=''
verified=false
if [ "${BACKUP_VERIFY:-true}" = true ]; then
	scratch=/tmp/drill
	rm -rf "$scratch"
	initdb -D "$scratch" -U scratch --auth=trust --locale=C --encoding=UTF8 >/dev/null
	postgres -D "$scratch" -k "$scratch" -c listen_addresses= -c fsync=off >/tmp/drill.log 2>&1 &
	pid=$!
	i=0
	until pg_isready -q -h "$scratch" -U scratch; do
		i=$((i + 1))
		[ $i -lt 60 ] || { cat /tmp/drill.log >&2; exit 1; }
		sleep 1
	done
	psql -X -q -h "$scratch" -U scratch -d postgres -c 'CREATE DATABASE drill' >/dev/null
	if ! pg_restore --exit-on-error --no-owner --no-acl -h "$scratch" -U scratch -d drill "$tmp"; then
		echo "liftoff backup: the restore drill of $name failed: the dump is not kept" >&2
		kill "$pid"
		exit 1
	fi
	tables=$(psql -X -A -t -h "$scratch" -U scratch -d drill -c "$COUNTS_SQL")
	migration=$(psql -X -A -t -h "$scratch" -U scratch -d drill -c "$MIGRATION_SQL")
	verified=true
	kill "$pid"
	wait "$pid" || true
fi
size=$(wc -c < "$tmp")
sum=$(sha256sum "$tmp")
sum=${sum%% *}
mv "$tmp" "$dir/$name.dump"
printf '{"name":"%s","project":"%s","stack":"%s","app":"%s","time":"%s","size":%s,"sha256":"%s","format":"pg_dump custom","database":"%s","migration":"%s","tables":%s,"reason":"scheduled","verified":%s}\n' \
	"$name" "$PROJECT" "$STACK" "$APP" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$size" "$sum" "$DATABASE_MODE" "$migration" "$tables" "$verified" > "$dir/.$name.json"
mv "$dir/.$name.json" "$dir/$name.json"
echo "liftoff backup: $name, $size bytes, verified: $verified"
ls -1 "$dir" | sort | while read -r f; do
	case $f in *-scheduled.dump) echo "$f" ;; esac
done | head -n "-$BACKUP_RETAIN" | while read -r old; do
	rm -f "$dir/$old" "$dir/${old%.dump}.json"
	echo "liftoff backup: pruned $old"
done
