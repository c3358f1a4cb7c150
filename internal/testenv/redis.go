package testenv

import (
	"fmt"
	"net"
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
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := Command(t, "redis-server", "redis-server")
	port := FreePort(t)
	r := &Redis{Port: port, URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	argv := []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no"}
	r.Process = newProcess(t, "redis", argv, nil, nil, func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
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
	return r
}
