package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/liftoff-dev/liftoff/internal/notify"
)

// problem is a validation failure of one value.
type problem struct{ what, fix string }

func (p *problem) Error() string { return p.what }

// Bad is a validation failure: what is wrong, and the fix.
func Bad(what, fix string) error { return &problem{what, fix} }

var (
	stackNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$`)
	dnsLabelRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// OneOf accepts the allowed values.
func OneOf(allowed ...string) func(string) error {
	return func(s string) error {
		if slices.Contains(allowed, s) {
			return nil
		}
		return Bad("must be one of "+strings.Join(allowed, ", "), "use one of "+strings.Join(allowed, ", "))
	}
}

// Pattern accepts what matches re; example goes into the fix.
func Pattern(re, example string) func(string) error {
	c := regexp.MustCompile(re)
	return func(s string) error {
		if c.MatchString(s) {
			return nil
		}
		return Bad("is not in the expected form", "use a value like "+example)
	}
}

// NonEmpty accepts anything but blanks.
func NonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return Bad("must not be empty", "set a value")
	}
	return nil
}

func dnsLabel(maxLen int) func(string) error {
	return func(s string) error {
		if len(s) <= maxLen && dnsLabelRE.MatchString(s) {
			return nil
		}
		return Bad(fmt.Sprintf("must be lower-case letters, digits and '-', at most %d characters", maxLen), "use a name like shortener")
	}
}

// DNSSubdomain accepts a lower-case DNS name.
func DNSSubdomain(s string) error {
	for _, part := range strings.Split(s, ".") {
		if dnsLabelRE.MatchString(part) {
			continue
		}
		return Bad("must be a lower-case DNS name", "use a name like gp3 or local-path")
	}
	return nil
}

func domainName(s string) error {
	if len(s) <= 253 && strings.Contains(s, ".") && DNSSubdomain(s) == nil {
		return nil
	}
	return Bad("must be a lower-case DNS name with a dot", "use a name like sho.rt")
}

// HostOrIP accepts a host name or an IP address.
func HostOrIP(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if s != "" && len(s) <= 253 && DNSSubdomain(strings.ToLower(s)) == nil {
		return nil
	}
	return Bad("must be a host name or IP address", "use e.g. 192.168.1.10 or office-1.lan")
}

// CIDR accepts a private IPv4 network from /minBits to /maxBits.
func CIDR(minBits, maxBits int) func(string) error {
	return func(s string) error {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || p.Masked() != p {
			return Bad("is not an IPv4 network in CIDR form", "use 10.0.0.0/16")
		}
		if p.Bits() < minBits || p.Bits() > maxBits {
			return Bad(fmt.Sprintf("must be between /%d and /%d", minBits, maxBits), "use 10.0.0.0/16")
		}
		if !p.Addr().IsPrivate() {
			return Bad("is not a private (RFC 1918) range", "use 10.0.0.0/16")
		}
		return nil
	}
}

// AnyCIDR accepts an IPv4 or IPv6 network in CIDR form.
func AnyCIDR(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Masked() != p {
		return Bad("is not a network in CIDR form", "use e.g. 10.42.0.0/16")
	}
	return nil
}

// NamespaceName accepts a Kubernetes namespace name.
func NamespaceName(s string) error { return dnsLabel(63)(s) }

// cronSchedule accepts a Kubernetes CronJob schedule: five fields of
// digits, names, * / , - (or @hourly, @daily, @weekly, @monthly), or off.
func cronSchedule(s string) error {
	const fix = `use five cron fields like "0 3 * * *" (03:00 daily), @daily, or off`
	switch s {
	case "off", "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually":
		return nil
	}
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return Bad("must be a cron schedule of five fields", fix)
	}
	for _, f := range fields {
		if strings.Trim(f, "0123456789*/,-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			return Bad(fmt.Sprintf("has a field %q that is not cron", f), fix)
		}
	}
	return nil
}

func goPackage(s string) error {
	if s != "" && !strings.ContainsAny(s, " \t\n") {
		return nil
	}
	return Bad("is not a Go package path", "use ./app/cmd/shortener")
}

// GeneratedSecret accepts what liftoff generates (Generate): it goes into URLs
// and htpasswd files unescaped, so letters and digits only.
func GeneratedSecret(s string) error {
	if len(s) < 16 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		return Bad("must be at least 16 letters and digits", "remove it and let liftoff generate one: liftoff config rm KEY, then liftoff up")
	}
	return nil
}

// ImageRef checks an image reference (a tag, a digest or both).
func ImageRef(s string) error {
	if _, err := name.ParseReference(s, name.StrictValidation); err != nil {
		if _, err := name.ParseReference(s); err != nil {
			return Bad("is not an image reference", "use registry.example.com/app@sha256:... or registry.example.com/app:tag")
		}
	}
	return nil
}

func repository(s string) error {
	if _, err := name.NewRepository(s); err != nil {
		return Bad("is not a registry repository", "use a repository like ghcr.io/acme/shortener")
	}
	return nil
}

func postgresURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return Bad("must be a postgres:// URL with a host", "postgres://user:password@host:5432/db?sslmode=require")
	}
	return nil
}

func redisURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return Bad("must be a redis:// or rediss:// URL with a host", "redis://host:6379/0")
	}
	return nil
}

// webhook accepts a team channel (liftoff:alertWebhook, liftoff:notify): a
// Slack, Slack-compatible or Discord webhook, or mailto: with the SMTP relay
// and sender (notify.Parse).
func webhook(s string) error {
	if _, err := notify.Parse(s); err != nil {
		return Bad(err.Error(), notify.Example)
	}
	return nil
}

// chartMirror accepts where the upstream Helm charts come from instead of
// their public repositories: an HTTP Helm repository (its index.yaml at the
// URL) or an OCI registry path (upstream.Chart.Source).
func chartMirror(s string) error {
	const fix = "liftoff config set chartMirror https://charts.example.com/liftoff (or oci://registry.example.com/charts)"
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return Bad("is not a chart repository URL", fix)
	}
	switch u.Scheme {
	case "https", "http", "oci":
		return nil
	}
	return Bad("must be an HTTP Helm repository or an OCI registry", fix)
}

// ParseDuration parses Go durations plus a whole-day suffix ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// FormatDuration prints whole days as "Nd" and everything else as Go does.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// DefaultScaleDownDelay is how long the previous slot stays warm after a flip.
const DefaultScaleDownDelay = 5 * time.Minute

// DefaultBake is how long a new release's traffic is watched after the flip.
const DefaultBake = time.Minute

// ParsePercent reads a share written as a percentage, like 0.5%.
func ParsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || !strings.HasSuffix(s, "%") || v <= 0 || v > 100 {
		return 0, Bad("must be a percentage above 0 and at most 100", "write it like 0.5%")
	}
	return v / 100, nil
}

func percent(s string) error { _, err := ParsePercent(s); return err }

// ParseSteps reads a gradual shift's steps: rising percentages ending at
// 100, like 10,50,100; "off" (or "") for none.
func ParseSteps(s string) ([]int, error) {
	if s == "" || s == "off" {
		return nil, nil
	}
	const fix = "use rising percentages ending at 100, like 10,50,100, or off"
	var steps []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f), "%")))
		if err != nil || n <= 0 || n > 100 || len(steps) > 0 && n <= steps[len(steps)-1] {
			return nil, Bad(fmt.Sprintf("has %q, not a rising percentage", strings.TrimSpace(f)), fix)
		}
		steps = append(steps, n)
	}
	if steps[len(steps)-1] != 100 {
		return nil, Bad("must end at 100", fix)
	}
	return steps, nil
}

// ParseRange reads an autoscaler's bounds, MIN-MAX like 2-10 (1 to 50), or
// "off" (0, 0).
func ParseRange(s string) (lo, hi int, err error) {
	if s == "" || s == "off" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi < lo || hi > 50 {
		return 0, 0, Bad("must be MIN-MAX replicas, from 1 to 50", "write it like 2-10, or off")
	}
	return lo, hi, nil
}
