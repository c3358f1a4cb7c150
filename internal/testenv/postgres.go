package testenv

import (
	"context"
	"fmt"
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
)

// Postgres is a PostgreSQL server owned by one test.
type Postgres struct {
	*Process
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

// template initialises a data directory once and caches it under .cache.
func template(t testing.TB, initdb string) (string, error) {
	pgTemplateOnce.Do(func() {
		cred, uid, gid, err := pgUser()
		if err != nil {
			pgTemplateErr = err
			return
		}
		dir := filepath.Join(RepoRoot(t), ".cache", "testenv", "pgdata-template")
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
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb := Command(t, "initdb", "postgresql")
	postgres := Command(t, "postgres", "postgresql")
	tmpl, err := template(t, initdb)
	if err != nil {
		t.Fatal(err)
	}
	cred, uid, gid, _ := pgUser()
	base := t.TempDir()
	// The server runs as postgres: it must be able to reach the data directory.
	os.Chmod(base, 0o755)
	os.Chmod(filepath.Dir(base), 0o755)
	data := filepath.Join(base, "data")
	if out, err := exec.Command("cp", "-a", tmpl, data).CombinedOutput(); err != nil {
		t.Fatalf("copy template: %v %s", err, out)
	}
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", uid, gid), data).Run()
	os.Chmod(data, 0o700)
	sock := filepath.Join(base, "sock")
	os.Mkdir(sock, 0o777)
	os.Chown(sock, uid, gid)
	port := FreePort(t)
	pg := &Postgres{Port: port, URL: fmt.Sprintf("postgres://app@127.0.0.1:%d/app?sslmode=disable", port)}
	argv := []string{postgres, "-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", sock,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=64MB"}
	created := false
	pg.Process = newProcess(t, "postgres", argv, cred, nil, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://app@127.0.0.1:%d/postgres?sslmode=disable", port))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if !created {
			if _, err := conn.Exec(ctx, "CREATE DATABASE app"); err != nil {
				return err
			}
			created = true
		}
		return nil
	})
	pg.stopSignal = syscall.SIGINT // fast shutdown: drop sessions, as a crash or failover would
	return pg
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
