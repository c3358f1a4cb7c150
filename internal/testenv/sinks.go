package testenv

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Notification is one message a Sinks receiver got.
type Notification struct {
	At time.Time
	// Receiver is the webhook's path without slashes, or "email".
	Receiver    string
	Path        string
	ContentType string
	Body        string
}

// Text is what a chat webhook's JSON body says (Slack's text, Discord's
// content), or the raw body.
func (n Notification) Text() string {
	var m struct{ Text, Content string }
	if json.Unmarshal([]byte(n.Body), &m) == nil && m.Text+m.Content != "" {
		return m.Text + m.Content
	}
	return n.Body
}

// Sinks are the receiving end of a team channel, on loopback: a webhook
// server (any path; it answers 204 like Discord, which Slack clients accept
// as they do Slack's 200) and a minimal SMTP server (enough of RFC 5321 for
// Alertmanager's and liftoff's clients).
type Sinks struct {
	HTTP string // base URL
	SMTP string // host:port
	mu   sync.Mutex
	got  []Notification
}

// StartSinks starts both servers on loopback, stopped at the end of the test.
func StartSinks(t testing.TB) *Sinks {
	t.Helper()
	return StartSinksOn(t, "127.0.0.1")
}

// StartSinksOn starts both servers on host: the real node's host address
// (Node.HostIP) makes them reachable from the node's pods.
func StartSinksOn(t testing.TB, host string) *Sinks {
	t.Helper()
	s := &Sinks{}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.add(Notification{Receiver: strings.Trim(r.URL.Path, "/"), Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Body: string(b)})
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	s.HTTP = "http://" + ln.Addr().String()
	sl, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sl.Close() })
	s.SMTP = sl.Addr().String()
	go func() {
		for {
			c, err := sl.Accept()
			if err != nil {
				return
			}
			go s.smtpSession(c)
		}
	}()
	return s
}

func (s *Sinks) smtpSession(c net.Conn) {
	defer c.Close()
	rd := bufio.NewReader(c)
	fmt.Fprint(c, "220 sink ESMTP\r\n")
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			fmt.Fprint(c, "250-sink\r\n250 8BITMIME\r\n")
		case strings.HasPrefix(cmd, "DATA"):
			fmt.Fprint(c, "354 go on\r\n")
			var msg strings.Builder
			for {
				l, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				msg.WriteString(l)
			}
			// Undo quoted-printable soft breaks and the escaped '=' so bodies read plainly.
			body := strings.NewReplacer("=\r\n", "", "=3D", "=").Replace(msg.String())
			s.add(Notification{Receiver: "email", Body: body})
			fmt.Fprint(c, "250 queued\r\n")
		case strings.HasPrefix(cmd, "QUIT"):
			fmt.Fprint(c, "221 bye\r\n")
			return
		default:
			fmt.Fprint(c, "250 ok\r\n")
		}
	}
}

func (s *Sinks) add(n Notification) {
	n.At = time.Now()
	s.mu.Lock()
	s.got = append(s.got, n)
	s.mu.Unlock()
}

// All returns what the sinks got, in order.
func (s *Sinks) All() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.got...)
}

// Find returns the first notification of receiver after since whose body
// holds all of want.
func (s *Sinks) Find(receiver string, since time.Time, want ...string) *Notification {
next:
	for _, n := range s.All() {
		if n.Receiver != receiver || n.At.Before(since) {
			continue
		}
		for _, w := range want {
			if !strings.Contains(n.Body, w) {
				continue next
			}
		}
		return &n
	}
	return nil
}
