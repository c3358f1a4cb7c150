package notify

import (
	"context"
	"crypto/tls"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// sendMail delivers m through the relay: STARTTLS when the relay offers it
// (required unless RequireTLS is off), PLAIN auth when a username is given.
func sendMail(ctx context.Context, d Dest, m Message) error {
	where := "SMTP relay " + d.Smarthost
	host, _, _ := net.SplitHostPort(d.Smarthost)
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", d.Smarthost)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("%s: STARTTLS: %w", where, err)
		}
	} else if d.RequireTLS {
		return fmt.Errorf("%s offers no STARTTLS; add &require_tls=false to the mailto: address for a relay on a private network", where)
	}
	if d.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", d.Username, d.Password, host)); err != nil {
			return fmt.Errorf("%s: auth as %s: %w", where, d.Username, err)
		}
	}
	if err := c.Mail(d.From); err != nil {
		return fmt.Errorf("%s: MAIL FROM: %w", where, err)
	}
	if err := c.Rcpt(d.To); err != nil {
		return fmt.Errorf("%s: RCPT TO: %w", where, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("%s: DATA: %w", where, err)
	}
	body := strings.ReplaceAll(strings.Join(m.Lines, "\n"), "\n", "\r\n")
	_, err = fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		d.From, d.To, mime.QEncoding.Encode("utf-8", m.Title), time.Now().Format(time.RFC1123Z), body)
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return c.Quit()
}
