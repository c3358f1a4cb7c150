package launch

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/kexec"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// The in-cluster PostgreSQL's roles. User app is the server's bootstrap
// superuser (POSTGRES_USER, as the official image makes it); after the
// first up it has no password, so only liftoff reaches it, over the pod's
// socket through the API server. The app logs in as one role per password
// (outputs.DatabaseLogin), a member of DatabaseOwner that acts as it: no
// superuser, no CREATEROLE, owner of the app's database alone.
//
// A rotation (liftoff config set databasePassword, then up) makes the new
// password's login beside the old one, the new slot uses it, and the old
// login is retired (no login, no password) once no session uses it any
// more: the old slot keeps its connections and can reopen them until it
// stops, so no request fails; a rollback in between starts pods with the
// new Secret, hence the new login.

// postgresPod is the in-cluster PostgreSQL's pod (a one-replica StatefulSet).
const postgresPod, postgresContainer = "postgres-0", "postgres"

var generatedPassword = regexp.MustCompile(`^[A-Za-z0-9]{16,128}$`)

// ensureLogins makes the login of password and the owner role, and moves
// whatever the bootstrap superuser owns in the app's database to the
// owner (a database made before liftoff split the roles). Idempotent. It
// waits for a server that is starting (superuserSQL); waiting hears of it.
func ensureLogins(ctx context.Context, e *rollout.Client, password string, waiting func(reason string)) error {
	if !generatedPassword.MatchString(password) {
		return failure.Newf(failure.Config, "liftoff config set --secret databasePassword \"$(head -c 64 /dev/urandom | tr -dc A-Za-z0-9 | head -c 32)\"",
			"databasePassword must be 16 to 128 letters and digits")
	}
	login, owner := outputs.DatabaseLogin(password), outputs.DatabaseOwner
	sql := fmt.Sprintf(`
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[2]s') THEN CREATE ROLE %[2]s NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s') THEN CREATE ROLE %[1]s LOGIN; END IF;
END $$;
ALTER ROLE %[2]s NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE %[1]s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD '%[3]s';
GRANT %[2]s TO %[1]s;
ALTER ROLE %[1]s SET role = '%[2]s';
ALTER DATABASE app OWNER TO %[2]s;
ALTER SCHEMA public OWNER TO %[2]s;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relowner <> '%[2]s'::regrole
      AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE format('ALTER %%s %%I OWNER TO %[2]s',
      CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, r.relname);
  END LOOP;
END $$;`, login, owner, password)
	if _, err := superuserSQL(ctx, e, sql, waiting); err != nil {
		return fmt.Errorf("make the database login %s: %w", login, err)
	}
	return nil
}

// retireLogins takes login and password away from every app login but
// current once no session uses it (the old slot may still open
// connections until its pods are gone), and the password from the
// bootstrap superuser; it returns the roles it retired.
func retireLogins(ctx context.Context, e *rollout.Client, current string) ([]string, error) {
	sql := fmt.Sprintf(`
WITH idle AS (
  SELECT r.rolname FROM pg_authid r
  WHERE r.rolname LIKE 'app\_%%' AND r.rolname <> '%[2]s' AND r.rolname <> '%[1]s' AND (r.rolcanlogin OR r.rolpassword IS NOT NULL)
    AND NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.usename = r.rolname AND a.pid <> pg_backend_pid())
  -- the superuser's password goes at once: no one logs in with it (liftoff
  -- uses the socket), and sessions it has keep running
  OR r.rolname = 'app' AND r.rolpassword IS NOT NULL
)
SELECT rolname FROM idle ORDER BY 1;`, current, outputs.DatabaseOwner)
	out, err := superuserSQL(ctx, e, sql, nil)
	if err != nil {
		return nil, fmt.Errorf("find the retired database logins: %w", err)
	}
	var retired []string
	var alter strings.Builder
	for _, r := range strings.Fields(out) {
		retired = append(retired, r)
		if r == "app" { // the superuser keeps its socket login
			fmt.Fprintf(&alter, "ALTER ROLE app PASSWORD NULL;\n")
		} else {
			fmt.Fprintf(&alter, "ALTER ROLE %s NOLOGIN PASSWORD NULL;\n", r)
		}
	}
	if alter.Len() == 0 {
		return nil, nil
	}
	if _, err := superuserSQL(ctx, e, alter.String(), nil); err != nil {
		return nil, fmt.Errorf("retire the database logins %s: %w", strings.Join(retired, ", "), err)
	}
	return retired, nil
}

// databaseCredentials are the login and password of the app's DATABASE_URL,
// as the Secret its pods read holds them (the engine wrote it this run):
// the cluster's copy, so a deploy needs no decrypted stack config.
func databaseCredentials(ctx context.Context, e *rollout.Client, secret string) (login, password string, err error) {
	s, err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).Get(ctx, secret, metav1.GetOptions{})
	if err != nil {
		return "", "", fmt.Errorf("read the app's Secret %s: %w", secret, err)
	}
	u, err := url.Parse(string(s.Data["DATABASE_URL"]))
	if err != nil || u.User == nil {
		return "", "", fmt.Errorf("the app's Secret %s holds no DATABASE_URL with a user", secret)
	}
	password, _ = u.User.Password()
	return u.User.Username(), password, nil
}

// databaseWait is how long liftoff waits for the in-cluster PostgreSQL to
// take connections to the app's database: a server just made may still be
// initialising its volume, or restarting (the official image's entrypoint
// stops the temporary server it made the database with, then starts the
// real one), and a pod being replaced has no container for a moment.
const databaseWait = 2 * time.Minute

// superuserSQL runs sql as the bootstrap superuser over the PostgreSQL
// pod's socket (the statements travel as an argument: an exec's stdin can
// lose its end to the exec's own close) and returns psql's unaligned output.
// A failed connection (psql's exit 2), or an exec into a container that is
// not running, is tried again every 2 s for up to databaseWait, so sql must
// be idempotent; waiting, when not nil, hears of the first.
func superuserSQL(ctx context.Context, e *rollout.Client, sql string, waiting func(reason string)) (string, error) {
	deadline := time.Now().Add(databaseWait)
	for {
		out, retry, err := superuserSQLOnce(ctx, e, sql)
		if !retry || !time.Now().Before(deadline) {
			if retry {
				err = failure.Newf(failure.Health, fmt.Sprintf("kubectl -n %s logs %s; kubectl -n %s describe pod %s", e.Ref.Namespace, postgresPod, e.Ref.Namespace, postgresPod),
					"the in-cluster PostgreSQL took no connection to the app's database in %s: %v", databaseWait, err)
			}
			return out, err
		}
		if waiting != nil {
			waiting(err.Error())
			waiting = nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// superuserSQLOnce runs sql once; retry says whether the server or its
// container was not there to run it.
func superuserSQLOnce(ctx context.Context, e *rollout.Client, sql string) (out string, retry bool, err error) {
	var stdout, stderr bytes.Buffer
	code, err := kexec.Run(ctx, e.Kube, e.Rest, kexec.Options{Namespace: e.Ref.Namespace, Pod: postgresPod, Container: postgresContainer,
		Command: []string{"psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "app", "-d", "app", "-c", sql}, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return "", ctx.Err() == nil && !postgresRunning(ctx, e), err
	}
	if code != 0 {
		return "", code == psqlConnectionFailed, fmt.Errorf("psql exited %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), false, nil
}

// psqlConnectionFailed is psql's exit code when it could not connect, or
// lost its connection (a server starting, stopping, or without the
// database yet).
const psqlConnectionFailed = 2

// postgresRunning says whether the PostgreSQL pod's container runs.
func postgresRunning(ctx context.Context, e *rollout.Client) bool {
	pod, err := e.Kube.CoreV1().Pods(e.Ref.Namespace).Get(ctx, postgresPod, metav1.GetOptions{})
	return err == nil && rollout.Running(*pod, postgresContainer)
}
