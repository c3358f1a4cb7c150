package launch

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// flushCache empties the app's cache after a restore, so that no replica
// serves what the restore replaced (a cached redirect, a cached "no such
// link"): the in-cluster Valkey is flushed through a port-forward, which
// also drops every replica's client-side copy (Valkey tells them). A cache
// liftoff cannot reach is left alone, with a warning.
func flushCache(ctx context.Context, d Deps, db *DB, e *rollout.Client) {
	switch db.Config.Cache.Mode {
	case "none", "":
		return
	case "in-cluster":
	default:
		d.Printer.Warnf("flush the app's cache (%s): it may hold entries from before the restore until they expire", db.Config.Cache.Mode)
		return
	}
	if err := flushInCluster(ctx, db, e); err != nil {
		d.Printer.Warnf("could not flush the in-cluster cache: %v; its entries expire on their own", err)
		return
	}
	d.Printer.Infof("flushed the app's cache: every replica reads the restored data")
}

func flushInCluster(ctx context.Context, db *DB, e *rollout.Client) error {
	secret := db.Site.SecretName
	if secret == "" {
		secret = outputs.EnvSecret(db.Site.App)
	}
	s, err := e.Kube.CoreV1().Secrets(db.Site.Namespace).Get(ctx, secret, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read %s: %w", secret, err)
	}
	u, err := url.Parse(string(s.Data["CACHE_URL"]))
	if err != nil || u.Host == "" {
		return fmt.Errorf("CACHE_URL of %s is not a URL", secret)
	}
	addr, stop, err := rollout.PortForward(ctx, e.Rest, db.Site.Namespace+"/"+strings.Split(u.Hostname(), ".")[0]+":"+u.Port())
	if err != nil {
		return err
	}
	defer stop()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if pw, ok := u.User.Password(); ok {
		if err := command(conn, r, "AUTH", u.User.Username(), pw); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	return command(conn, r, "FLUSHALL")
}

// command sends one RESP command and reads a simple-string reply.
func command(conn net.Conn, r *bufio.Reader, args ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+") {
		return fmt.Errorf("%s", strings.TrimSpace(line))
	}
	return nil
}
