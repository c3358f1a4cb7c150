// Command postgres-entrypoint is the stand-in PostgreSQL image's entrypoint,
// doing what the official image's docker-entrypoint.sh does for liftoff's
// StatefulSet: on an empty $PGDATA, initdb with user $POSTGRES_USER and
// password $POSTGRES_PASSWORD, password logins over the network, and the
// database $POSTGRES_DB; then postgres in the foreground, listening on every
// address. Unlike the official image, the initialisation is all or nothing:
// it happens in a folder beside $PGDATA that becomes $PGDATA only once the
// database is made, so a container killed half-way starts it again rather
// than running a server without the app's database.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

const bin = "/usr/lib/postgresql/15/bin"

func main() {
	data := env("PGDATA", "/var/lib/postgresql/data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		if err := initialise(data); err != nil {
			fmt.Fprintln(os.Stderr, "postgres-entrypoint:", err)
			os.Exit(1)
		}
	}
	args := append([]string{"postgres", "-D", data, "-c", "listen_addresses=*", "-c", "jit=off"}, os.Args[1:]...)
	fmt.Fprintln(os.Stderr, "postgres-entrypoint: starting", strings.Join(args, " "))
	if err := syscall.Exec(filepath.Join(bin, "postgres"), args, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "postgres-entrypoint:", err)
		os.Exit(1)
	}
}

// initialise makes the cluster in data: in data+".init" (a leftover of an
// earlier, interrupted try is removed first), renamed to data once done.
// data must be a folder below the volume's mount point, as liftoff's
// StatefulSet and restore drills set PGDATA, so the rename stays on it.
func initialise(data string) error {
	user, password, db := env("POSTGRES_USER", "postgres"), os.Getenv("POSTGRES_PASSWORD"), env("POSTGRES_DB", env("POSTGRES_USER", "postgres"))
	if password == "" {
		return fmt.Errorf("POSTGRES_PASSWORD is empty")
	}
	final, data := data, data+".init"
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if err := initdb(data, user, password, db); err != nil {
		return err
	}
	if err := os.Remove(final); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("%s holds files but no PG_VERSION: %w", final, err)
	}
	return os.Rename(data, final)
}

func initdb(data, user, password, db string) error {
	pw := filepath.Join(os.TempDir(), "pwfile")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	defer os.Remove(pw)
	if err := run("", filepath.Join(bin, "initdb"), "-D", data, "-U", user, "--pwfile="+pw, "--auth-local=trust", "--auth-host=scram-sha-256",
		"--encoding=UTF8", "--locale=C"); err != nil {
		return err
	}
	hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fmt.Fprintln(hba, "host all all all scram-sha-256")
	hba.Close()
	if db == "postgres" {
		return nil
	}
	return run(fmt.Sprintf("CREATE DATABASE %q;\n", db), filepath.Join(bin, "postgres"), "--single", "-D", data, "-c", "jit=off", "template1")
}

func run(stdin, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	return nil
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
