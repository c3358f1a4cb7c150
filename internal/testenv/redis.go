package testenv

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Redis is a Redis server (protocol-compatible with Valkey) owned by one test.
type Redis struct {
	*Process
	Port int
	URL  string
}

// StartRedis starts redis-server on a free loopback port with persistence off.
func StartRedis(t testing.TB) *Redis { return StartRedisOn(t, "127.0.0.1") }

// StartRedisOn is StartRedis listening on host (a real node's HostIP makes it
// reachable from the node's pods).
func StartRedisOn(t testing.TB, host string) *Redis {
	t.Helper()
	r, err := NewRedis(t.TempDir(), host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// NewRedis starts redis-server with its files in dir, listening on host at a
// free port; Stop ends it. For programs that are not tests (make demo).
func NewRedis(dir, host string) (*Redis, error) {
	bin, err := findCommand("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found: apt-get install redis-server (make test does it when root)")
	}
	port, err := freePort(host)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	r := &Redis{Port: port, URL: "redis://" + addr + "/0"}
	// Protected mode refuses clients that are not on loopback; the server
	// listens only on host, which only this machine and its test namespaces reach.
	argv := []string{bin, "--port", strconv.Itoa(port), "--bind", host, "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"}
	r.Process, err = startProcess(filepath.Join(dir, "redis.log"), "redis", argv, nil, nil, func() error {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		c.Write([]byte("PING\r\n"))
		buf := make([]byte, 16)
		n, _ := c.Read(buf)
		if string(buf[:n]) != "+PONG\r\n" {
			return errNotReady
		}
		return nil
	})
	return r, err
}
