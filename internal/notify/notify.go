// Package notify tells a team channel what happened: a Slack or Discord
// webhook, or an email through an SMTP relay. liftoff:notify (every deploy,
// promote, rollback and secrets change) and liftoff:alertWebhook (where
// Alertmanager sends alerts) take the same forms, parsed here.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Kinds of destination.
const (
	Slack   = "slack"
	Discord = "discord"
	Email   = "email"
)

// Dest is where messages go.
type Dest struct {
	Kind string
	// URL is the webhook (slack, discord) messages are POSTed to.
	URL string
	// Email: the recipient, the sender and the relay (host:port), with
	// optional credentials; RequireTLS (the default) refuses a relay without
	// STARTTLS.
	To, From, Smarthost, Username, Password string
	RequireTLS                              bool
}

// Example lists the accepted forms, for error messages.
const Example = "https://hooks.slack.com/services/..., https://discord.com/api/webhooks/..., slack+https://chat.example.com/hooks/... (a Slack-compatible webhook: Mattermost, Rocket.Chat), " +
	"or mailto:oncall@example.com?smarthost=smtp.example.com:587&from=liftoff@example.com"

// Parse reads a destination:
//   - a Slack webhook, https://hooks.slack.com/services/...
//   - a Discord webhook, https://discord.com/api/webhooks/...
//   - a Slack-compatible webhook anywhere (Mattermost, Rocket.Chat):
//     slack+https://chat.example.com/hooks/... (discord+https:// likewise),
//     or slack+http:// to a loopback address (a relay on the same machine)
//   - mailto:to@example.com?smarthost=relay:587&from=me@example.com, with
//     &username= and &password= for an authenticating relay and
//     &require_tls=false for one without STARTTLS.
//
// Anything else is an error that says what was expected (never the value:
// it holds a token).
func Parse(s string) (Dest, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return Dest{}, errors.New("is not a URL")
	}
	host := strings.ToLower(u.Hostname())
	switch u.Scheme {
	case "https":
		switch {
		case host == "slack.com" || strings.HasSuffix(host, ".slack.com"):
			return Dest{Kind: Slack, URL: u.String()}, nil
		case host == "discord.com" || host == "discordapp.com" || strings.HasSuffix(host, ".discord.com"):
			return Dest{Kind: Discord, URL: u.String()}, nil
		}
		return Dest{}, fmt.Errorf("https://%s is neither Slack nor Discord: write slack+https://%s/... for a Slack-compatible webhook", host, host)
	case "slack+https", "slack+http", "discord+https", "discord+http":
		kind, scheme, _ := strings.Cut(u.Scheme, "+")
		if host == "" {
			return Dest{}, errors.New("names no host")
		}
		if scheme == "http" && !loopback(host) {
			return Dest{}, fmt.Errorf("%s:// is only for a loopback address: the webhook's token would cross the network in clear; use %s+https://", u.Scheme, kind)
		}
		v := *u
		v.Scheme = scheme
		return Dest{Kind: kind, URL: v.String()}, nil
	case "mailto":
		q := u.Query()
		d := Dest{Kind: Email, To: u.Opaque, From: q.Get("from"), Smarthost: q.Get("smarthost"),
			Username: q.Get("username"), Password: q.Get("password"), RequireTLS: q.Get("require_tls") != "false"}
		if !strings.Contains(d.To, "@") || d.Smarthost == "" || d.From == "" {
			return Dest{}, errors.New("must name the address, the SMTP relay (smarthost=host:port) and the sender (from=)")
		}
		if _, port, err := net.SplitHostPort(d.Smarthost); err != nil || port == "" {
			return Dest{}, fmt.Errorf("smarthost %q is not host:port (e.g. smtp.example.com:587)", d.Smarthost)
		}
		return d, nil
	}
	return Dest{}, errors.New("must be a Slack or Discord webhook URL, or a mailto: address")
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Message is one announcement: a title line and detail lines.
type Message struct {
	Title string
	Lines []string
}

// Text is the message as plain text.
func (m Message) Text() string {
	return strings.Join(append([]string{m.Title}, m.Lines...), "\n")
}

// discordMax is the longest content a Discord webhook takes.
const discordMax = 2000

// Sender delivers messages to one destination.
type Sender struct {
	Dest Dest
	// Client posts webhooks (http.DefaultClient when nil); Timeout bounds
	// one Send, retries included (10s when 0).
	Client  *http.Client
	Timeout time.Duration
}

// Send delivers m, retrying a webhook that answers 429 or 5xx (after its
// Retry-After, within the timeout). The error never holds the destination's
// secret parts.
func (s Sender) Send(ctx context.Context, m Message) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch s.Dest.Kind {
	case Slack:
		return s.post(ctx, map[string]string{"text": m.Text()})
	case Discord:
		text := m.Text()
		if r := []rune(text); len(r) > discordMax {
			text = string(r[:discordMax-1]) + "…"
		}
		return s.post(ctx, map[string]string{"content": text})
	case Email:
		return sendMail(ctx, s.Dest, m)
	}
	return fmt.Errorf("notify: unknown destination kind %q", s.Dest.Kind)
}

func (s Sender) post(ctx context.Context, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	hc := s.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	where := s.Dest.Kind + " webhook"
	if u, err := url.Parse(s.Dest.URL); err == nil {
		where += " at " + u.Host // never the path: it is the token
	}
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Dest.URL, bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", where, errors.Unwrap(err))
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err // the URL holds the token
			}
			return fmt.Errorf("%s: %w", where, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		err = fmt.Errorf("%s answered %s: %s", where, resp.Status, strings.TrimSpace(string(msg)))
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode/100 != 5 || attempt == 3 {
			return err
		}
		wait := time.Duration(attempt) * 500 * time.Millisecond
		if ra, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && ra >= 0 {
			wait = time.Duration(ra) * time.Second
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}
