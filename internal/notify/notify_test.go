package notify_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/internal/notify"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]notify.Dest{
		"https://hooks.slack.com/services/T0/B0/x":      {Kind: notify.Slack, URL: "https://hooks.slack.com/services/T0/B0/x"},
		"https://discord.com/api/webhooks/1/abc":        {Kind: notify.Discord, URL: "https://discord.com/api/webhooks/1/abc"},
		"https://discordapp.com/api/webhooks/1/abc":     {Kind: notify.Discord, URL: "https://discordapp.com/api/webhooks/1/abc"},
		"slack+https://chat.acme.dev/hooks/xyz":         {Kind: notify.Slack, URL: "https://chat.acme.dev/hooks/xyz"},
		"discord+https://relay.acme.dev/api/webhooks/1": {Kind: notify.Discord, URL: "https://relay.acme.dev/api/webhooks/1"},
		"slack+http://127.0.0.1:8080/hook":              {Kind: notify.Slack, URL: "http://127.0.0.1:8080/hook"},
		"mailto:ops@acme.dev?smarthost=smtp.acme.dev:587&from=liftoff@acme.dev": {Kind: notify.Email, To: "ops@acme.dev", From: "liftoff@acme.dev",
			Smarthost: "smtp.acme.dev:587", RequireTLS: true},
		"mailto:ops@acme.dev?smarthost=relay:25&from=l@acme.dev&require_tls=false&username=u&password=p": {Kind: notify.Email, To: "ops@acme.dev", From: "l@acme.dev",
			Smarthost: "relay:25", Username: "u", Password: "p"},
	} {
		got, err := notify.Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"https://alerts.acme.dev/hook/s3cr3t":                         "slack+https://alerts.acme.dev",
		"http://hooks.slack.com/services/s3cr3t":                      "must be a Slack or Discord",
		"slack+http://chat.acme.dev/hooks/s3cr3t":                     "only for a loopback address",
		"mailto:ops@acme.dev":                                         "SMTP relay",
		"mailto:ops@acme.dev?smarthost=smtp.acme.dev&from=l@acme.dev": "not host:port",
		"ftp://x/s3cr3t":                                              "must be a Slack or Discord",
		"":                                                            "must be a Slack or Discord",
	} {
		_, err := notify.Parse(in)
		if err == nil || !strings.Contains(err.Error(), why) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Parse(%q): %v, want an error saying %q without the token", in, err, why)
		}
	}
}

// TestSendWebhooks posts each format to a real server on loopback.
func TestSendWebhooks(t *testing.T) {
	s := testenv.StartSinks(t)
	m := notify.Message{Title: "shortener (prod): deploy done, slot green is live", Lines: []string{"by: ci:42"}}
	for _, dest := range []string{"slack+" + s.HTTP + "/slack/T0KEN", "discord+" + s.HTTP + "/discord/T0KEN"} {
		d, err := notify.Parse(dest)
		if err != nil {
			t.Fatal(err)
		}
		if err := (notify.Sender{Dest: d}).Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	long := notify.Message{Title: "t", Lines: []string{strings.Repeat("x", 3000)}}
	d, _ := notify.Parse("discord+" + s.HTTP + "/discord/long")
	if err := (notify.Sender{Dest: d}).Send(context.Background(), long); err != nil {
		t.Fatal(err)
	}
	got := s.All()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, key := range []string{`"text":`, `"content":`} {
		if got[i].ContentType != "application/json" || !strings.Contains(got[i].Body, key) || got[i].Text() != m.Text() {
			t.Errorf("%s: %s %s", got[i].Path, got[i].ContentType, got[i].Body)
		}
	}
	if n := len([]rune(got[2].Text())); n > 2000 {
		t.Errorf("a Discord message of %d characters (Discord takes %d)", n, 2000)
	}
}

// TestSendFailures: a webhook that is busy is retried after its
// Retry-After; one that refuses is an error without the token; one that
// never answers is given up on at the timeout.
func TestSendFailures(t *testing.T) {
	var calls atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer busy.Close()
	send := func(url string, timeout time.Duration) error {
		d, err := notify.Parse("slack+" + url)
		if err != nil {
			t.Fatal(err)
		}
		return notify.Sender{Dest: d, Timeout: timeout}.Send(context.Background(), notify.Message{Title: "x"})
	}
	if err := send(busy.URL+"/hooks/s3cr3t", 0); err != nil || calls.Load() != 2 {
		t.Errorf("after a 429: %v (%d calls)", err, calls.Load())
	}

	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no_service", http.StatusNotFound)
	}))
	defer gone.Close()
	if err := send(gone.URL+"/hooks/s3cr3t", 0); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "no_service") ||
		strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("a 404: %v", err)
	}

	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	err = send("http://"+silent.Addr().String()+"/hooks/s3cr3t", 500*time.Millisecond)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("a silent webhook: %v", err)
	}
	t.Logf("a silent webhook gave up after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestSendMail delivers through a real SMTP conversation; a relay without
// STARTTLS is refused unless require_tls=false says it is fine.
func TestSendMail(t *testing.T) {
	s := testenv.StartSinks(t)
	m := notify.Message{Title: "shortener (prod): deploy FAILED, slot blue keeps serving", Lines: []string{"cause: health: crash loop", "by: ci:7"}}
	d, err := notify.Parse("mailto:ops@acme.dev?smarthost=" + s.SMTP + "&from=liftoff@acme.dev&require_tls=false")
	if err != nil {
		t.Fatal(err)
	}
	if err := (notify.Sender{Dest: d}).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	n := s.Find("email", time.Time{}, "Subject: shortener (prod): deploy FAILED", "To: ops@acme.dev", "From: liftoff@acme.dev", "cause: health: crash loop\r\nby: ci:7")
	if n == nil {
		t.Fatalf("no such mail in %+v", s.All())
	}
	d.RequireTLS = true
	if err := (notify.Sender{Dest: d}).Send(context.Background(), m); err == nil || !strings.Contains(err.Error(), "require_tls=false") {
		t.Errorf("a relay without STARTTLS, TLS required: %v", err)
	}
}

func TestReleaseMessage(t *testing.T) {
	warm := time.Date(2026, 12, 3, 14, 5, 0, 0, time.UTC)
	for _, c := range []struct {
		r     notify.Release
		title string
		lines []string
	}{
		{notify.Release{App: "shortener", Stack: "prod", Action: "deploy", Result: "ok", Slot: "green", Live: "green", Previous: "blue",
			Image: "r.io/app@sha256:aaa", Digest: "sha256:aaa", Who: "ci:42", Duration: 83 * time.Second, Bake: "passed: 2000 requests", WarmUntil: warm},
			"shortener (prod): deploy done, slot green is live",
			[]string{"slot: green (previously live: blue)", "release: r.io/app@sha256:aaa", "by: ci:42", "took: 1m23s", "bake: passed: 2000 requests",
				"undo: liftoff rollback --stack prod (instant while slot blue is warm, until 14:05 UTC)"}},
		{notify.Release{App: "shortener", Stack: "prod", Action: "deploy", Result: "failed", Slot: "green", Live: "blue", Previous: "blue",
			Digest: "sha256:bbb", Who: "ann@lap", Cause: "health: slot green is crash-looping"},
			"shortener (prod): deploy FAILED, slot blue keeps serving",
			[]string{"slot: green (previously live: blue)", "release: sha256:bbb", "by: ann@lap", "cause: health: slot green is crash-looping"}},
		{notify.Release{App: "shortener", Action: "deploy", Result: "rolled-back", Slot: "green", Live: "blue", Previous: "blue", Who: "ci:9",
			Bake: "failed: 5.1% 5xx", Cause: "bake: error ratio 5.1% over 0.5%"},
			"shortener: deploy ROLLED BACK by its bake, slot blue is live again",
			[]string{"slot: green (previously live: blue)", "by: ci:9", "bake: failed: 5.1% 5xx", "cause: bake: error ratio 5.1% over 0.5%"}},
		{notify.Release{App: "web", Stack: "dev", Action: "secrets", Result: "ok", Slot: "blue", Live: "blue", Previous: "green", Who: "bo@pc", WarmUntil: warm},
			"web (dev): secrets change done, slot blue is live",
			[]string{"slot: blue (previously live: green)", "by: bo@pc", "undo: liftoff rollback --stack dev (instant while slot green is warm, until 14:05 UTC)"}},
	} {
		m := c.r.Message()
		if m.Title != c.title || strings.Join(m.Lines, "\n") != strings.Join(c.lines, "\n") {
			t.Errorf("%s %s:\n%s\nwant\n%s\n%s", c.r.Action, c.r.Result, m.Text(), c.title, strings.Join(c.lines, "\n"))
		}
	}
}
