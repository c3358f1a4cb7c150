package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Postgres is a PostgreSQL server owned by one test.
type Postgres struct {
	*Process
	Host string
	Port int
	// URL connects to the database "app" as the superuser "app".
	URL string
}

var (
	pgTemplateOnce sync.Once
	pgTemplate     string
	pgTemplateErr  error
)

// pgUser is who runs the server: initdb refuses root, so tests running as
// root use the postgres account that Debian's package creates.
func pgUser() (*syscall.Credential, int, int, error) {
	if os.Getuid() != 0 {
		return nil, os.Getuid(), os.Getgid(), nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, 0, 0, fmt.Errorf("running as root needs the postgres user (apt-get install postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid, gid, nil
}

// template initialises a data directory once and caches it under repo/.cache.
func template(repo, initdb string) (string, error) {
	pgTemplateOnce.Do(func() {
		cred, uid, gid, err := pgUser()
		if err != nil {
			pgTemplateErr = err
			return
		}
		dir := filepath.Join(repo, ".cache", "testenv", "pgdata-template")
		if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
			pgTemplate = dir
			return
		}
		tmp := dir + fmt.Sprintf(".tmp%d", os.Getpid())
		os.RemoveAll(tmp)
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			pgTemplateErr = err
			return
		}
		os.Chown(tmp, uid, gid)
		os.Chmod(filepath.Dir(tmp), 0o755)
		cmd := exec.Command(initdb, "-D", tmp, "-U", "app", "--auth=trust", "--encoding=UTF8", "--no-sync")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			pgTemplateErr = fmt.Errorf("initdb: %v\n%s", err, out)
			return
		}
		if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
			pgTemplateErr = err
			return
		}
		pgTemplate = dir
	})
	return pgTemplate, pgTemplateErr
}

// StartPostgres starts PostgreSQL on a free loopback port in a temp dir, with
// a database "app", and stops it when the test ends.
func StartPostgres(t testing.TB) *Postgres { return StartPostgresOn(t, "127.0.0.1") }

// StartPostgresOn is StartPostgres listening on host: a real node's HostIP
// makes it reachable from the node's pods (URL then names that address).
func StartPostgresOn(t testing.TB, host string) *Postgres {
	t.Helper()
	pg, err := NewPostgres(t.TempDir(), RepoRoot(t), host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	return pg
}

// NewPostgres starts PostgreSQL with its files in dir, listening on host at
// a free port; Stop ends it. For programs that are not tests (make demo).
func NewPostgres(dir, repo, host string) (*Postgres, error) {
	initdb, err := findCommand("initdb")
	if err != nil {
		return nil, errors.New("initdb not found: apt-get install postgresql (make test does it when root)")
	}
	postgres, err := findCommand("postgres")
	if err != nil {
		return nil, errors.New("postgres not found: apt-get install postgresql (make test does it when root)")
	}
	tmpl, err := template(repo, initdb)
	if err != nil {
		return nil, err
	}
	cred, uid, gid, _ := pgUser()
	// The server runs as postgres: it must be able to reach the data directory.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	data := filepath.Join(dir, "data")
	if out, err := exec.Command("cp", "-a", tmpl, data).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("copy template: %v %s", err, out)
	}
	if host != "127.0.0.1" {
		// Pods connect from the node's pod range: let any address in (the
		// server listens only on host, which only this machine and its
		// test namespaces reach).
		f, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(f, "host all all 0.0.0.0/0 trust")
		f.Close()
	}
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", uid, gid), data).Run()
	os.Chmod(data, 0o700)
	sock := filepath.Join(dir, "sock")
	os.Mkdir(sock, 0o777)
	os.Chown(sock, uid, gid)
	port, err := freePort(host)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	pg := &Postgres{Port: port, Host: host, URL: fmt.Sprintf("postgres://app@%s/app?sslmode=disable", addr)}
	argv := []string{postgres, "-D", data, "-p", strconv.Itoa(port), "-h", host, "-k", sock,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=64MB"}
	created := false
	pg.Process, err = startProcess(filepath.Join(dir, "postgres.log"), "postgres", argv, cred, nil, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://app@%s/postgres?sslmode=disable", addr))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if !created {
			// On a busy machine the statement can outlast the client's
			// second and still succeed: the next try then finds the
			// database there (duplicate_database), which is what it wants.
			var pgErr *pgconn.PgError
			if _, err := conn.Exec(ctx, "CREATE DATABASE app"); err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") {
				return err
			}
			created = true
		}
		return nil
	})
	if pg.Process != nil {
		pg.stopSignal = syscall.SIGINT // fast shutdown: drop sessions, as a crash or failover would
	}
	return pg, err
}

// Restart stops the server (fast shutdown, connections dropped) and starts it again.
func (p *Postgres) Restart(t testing.TB, down time.Duration) {
	t.Helper()
	p.Stop()
	time.Sleep(down)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
}
