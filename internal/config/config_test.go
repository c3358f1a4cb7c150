package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/stacks"
	"github.com/liftoff-dev/liftoff/stacks/aws"
	"github.com/liftoff-dev/liftoff/stacks/homelab"
	"github.com/liftoff-dev/liftoff/stacks/kubeconfig"
)

// The targets register their settings with the config; these tests parse
// them as liftoff does.
var _ = stacks.Targets

func awsOf(s *Stack) *aws.Config       { return s.Section.(*aws.Config) }
func labOf(s *Stack) *homelab.Config   { return s.Section.(*homelab.Config) }
func kcOf(s *Stack) *kubeconfig.Config { return s.Section.(*kubeconfig.Config) }

func vals(kv ...string) Values {
	v := Values{}
	for i := 0; i < len(kv); i += 2 {
		v[kv[i]] = Plain(kv[i+1])
	}
	return v
}

const twoNodes = `[{"host":"10.0.0.1","role":"server","key":"~/.ssh/id_ed25519"},{"host":"10.0.0.2","role":"agent"}]`

func TestParseValid(t *testing.T) {
	s, err := Parse("dev", vals("liftoff:target", "kubeconfig", "liftoff:kubeconfig", "/k", "liftoff:registry", "127.0.0.1:5000/app"))
	if err != nil {
		t.Fatal(err)
	}
	if s.App.Name != "shortener" || s.App.Namespace != "shortener" || s.App.Replicas != 2 || s.Database.Mode != "in-cluster" ||
		s.Cache.Mode != "in-cluster" || !s.Observability.Enabled || s.Observability.Retention != 7*24*time.Hour ||
		s.ScaleDownDelay != 5*time.Minute || kcOf(s).Path != "/k" || s.Registry.Repository != "127.0.0.1:5000/app" || s.Preview != nil {
		t.Errorf("defaults: %+v", s)
	}

	a, err := Parse("prod", vals("liftoff:target", "aws", "aws:region", "eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Database.Mode != "rds" || awsOf(a).Nodes.Capacity != "spot" || len(awsOf(a).Nodes.InstanceTypes) < 3 || awsOf(a).Nodes.Arch != "amd64" ||
		awsOf(a).EKSVersion != aws.DefaultEKSVersion || awsOf(a).ServiceCIDR != "172.20.0.0/16" {
		t.Errorf("aws defaults: %+v", awsOf(a))
	}

	h, err := Parse("lab", vals("liftoff:target", "homelab", "liftoff:nodes", twoNodes))
	if err != nil {
		t.Fatal(err)
	}
	if len(labOf(h).Servers()) != 1 || len(labOf(h).Agents()) != 1 || labOf(h).Nodes[1].User != "root" || labOf(h).Nodes[1].Port != 22 ||
		labOf(h).K3sVersion != homelab.DefaultK3sVersion || labOf(h).Nodes[0].Name != "" {
		t.Errorf("homelab: %+v", labOf(h))
	}

	// A preview of an aws parent: no aws settings (the parent's outputs say
	// where to go), PostgreSQL and Valkey in its namespace, no observability of its own.
	p, err := Parse("pr-42", vals("liftoff:target", "aws", "liftoff:previewOf", "prod", "liftoff:ttl", "2d"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Preview == nil || p.Preview.TTL != 48*time.Hour || p.App.Namespace != "shortener-pr-42" || p.Section != nil ||
		p.Database.Mode != "in-cluster" || p.Cache.Mode != "in-cluster" || p.Observability.Enabled {
		t.Errorf("preview: %+v %+v %+v %+v", p.Preview, p.App, p.Database, p.Observability)
	}
	// Its own access to the parent's cluster, whatever the parent's target.
	p, err = Parse("pr-42", vals("liftoff:target", "aws", "liftoff:previewOf", "prod", "liftoff:previewKubeconfig", "/ci/preview.kubeconfig", "liftoff:previewContext", "previews"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Preview.Kubeconfig != "/ci/preview.kubeconfig" || p.Preview.Context != "previews" || p.Section != nil {
		t.Errorf("preview with its own kubeconfig: %+v", p.Preview)
	}
}

func TestParseErrors(t *testing.T) {
	awsv := []string{"liftoff:target", "aws", "aws:region", "eu-west-1"}
	kc := []string{"liftoff:target", "kubeconfig", "liftoff:kubeconfig", "/k"}
	lab := []string{"liftoff:target", "homelab"}
	cases := []struct {
		name  string
		stack string
		vals  Values
		key   string // the key the error must name
		want  string // a fragment of the problem or fix
	}{
		{"no target", "dev", vals(), "liftoff:target", "liftoff init"},
		{"bad target", "dev", vals("liftoff:target", "gcp"), "liftoff:target", "aws, homelab, kubeconfig"},
		{"bad stack name", "Dev_1", vals(kc...), "stack", "DNS label"},
		{"unknown key", "dev", vals(append(kc, "liftoff:replica", "3")...), "liftoff:replica", "did you mean replicas"},
		{"other target's key", "dev", vals(append(kc, "liftoff:nodeMax", "3")...), "liftoff:nodeMax", "does not apply to target kubeconfig"},
		{"replicas range", "dev", vals(append(kc, "liftoff:replicas", "0")...), "liftoff:replicas", "from 1 to 50"},
		{"replicas type", "dev", vals(append(kc, "liftoff:replicas", "two")...), "liftoff:replicas", "whole number"},
		{"bool", "dev", vals(append(kc, "liftoff:observability", "yes please")...), "liftoff:observability", "true or false"},
		{"duration", "dev", vals(append(kc, "liftoff:scaleDownDelay", "forever")...), "liftoff:scaleDownDelay", "duration"},
		{"app name", "dev", vals(append(kc, "liftoff:app", "My_App")...), "liftoff:app", "lower-case"},
		{"image", "dev", vals(append(kc, "liftoff:image", "UPPER CASE")...), "liftoff:image", "image reference"},
		{"registry", "dev", vals(append(kc, "liftoff:registry", "not a repo!")...), "liftoff:registry", "repository"},
		{"kubeconfig empty", "dev", vals("liftoff:target", "kubeconfig", "liftoff:kubeconfig", " "), "liftoff:kubeconfig", "empty"},
		{"external db needs url", "dev", vals(append(kc, "liftoff:database", "external")...), "liftoff:databaseUrl", "--secret"},
		{"rds not on kubeconfig", "dev", vals(append(kc, "liftoff:database", "rds")...), "liftoff:database", "in-cluster, external"},
		{"plaintext secret", "dev", vals(append(kc, "liftoff:databaseUrl", "postgres://u:p@h/db")...), "liftoff:databaseUrl", "encrypted"},
		{"ttl without preview", "dev", vals(append(kc, "liftoff:ttl", "1h")...), "liftoff:ttl", "preview"},
		{"own kubeconfig without preview", "dev", vals(append(kc, "liftoff:previewKubeconfig", "/ci/k")...), "liftoff:previewKubeconfig", "preview"},
		{"preview of itself", "pr-1", vals("liftoff:target", "kubeconfig", "liftoff:previewOf", "pr-1"), "liftoff:previewOf", "itself"},
		{"preview with the parent's ingress", "pr-1", vals(append(kc, "liftoff:previewOf", "prod", "liftoff:ingressNamespaces", "ingress")...), "liftoff:ingressNamespaces", "parent stack's outputs"},
		{"preview with its own region", "pr-1", vals(append(awsv, "liftoff:previewOf", "prod")...), "aws:region", "parent stack's outputs"},
		{"preview with rds", "pr-1", vals("liftoff:target", "aws", "liftoff:previewOf", "prod", "liftoff:database", "rds"), "liftoff:database", "in-cluster"},
		{"preview sets the parent's limit", "pr-1", vals("liftoff:target", "kubeconfig", "liftoff:previewOf", "prod", "liftoff:maxPreviews", "3"), "liftoff:maxPreviews", "set it on prod"},
		{"preview with observability", "pr-1", vals("liftoff:target", "kubeconfig", "liftoff:previewOf", "prod", "liftoff:observability", "true"), "liftoff:observability", "parent"},
		{"bad preview domain", "prod", vals(append(kc, "liftoff:previewDomain", "not a domain")...), "liftoff:previewDomain", ""},
		{"region missing", "dev", vals("liftoff:target", "aws"), "aws:region", "eu-west-1"},
		{"region bad", "dev", vals("liftoff:target", "aws", "aws:region", "europe"), "aws:region", "AWS region"},
		{"cidr", "dev", vals(append(awsv, "liftoff:vpcCidr", "10.0.0.0/8")...), "liftoff:vpcCidr", "/16 and /20"},
		{"cidr public", "dev", vals(append(awsv, "liftoff:vpcCidr", "8.8.0.0/16")...), "liftoff:vpcCidr", "private"},
		{"cidr unmasked", "dev", vals(append(awsv, "liftoff:vpcCidr", "10.0.1.0/16")...), "liftoff:vpcCidr", "CIDR"},
		{"az count", "dev", vals(append(awsv, "liftoff:azCount", "4")...), "liftoff:azCount", "from 2 to 3"},
		{"nat", "dev", vals(append(awsv, "liftoff:nat", "gateway")...), "liftoff:nat", "single, per-az, none"},
		{"eks version", "dev", vals(append(awsv, "liftoff:eksVersion", "1.20")...), "liftoff:eksVersion", "1.32-1.34"},
		{"instance type", "dev", vals(append(awsv, "liftoff:nodeInstanceTypes", `["t3.large","big"]`)...), "liftoff:nodeInstanceTypes[1]", "instance type"},
		{"spot diversity", "dev", vals(append(awsv, "liftoff:nodeInstanceTypes", `["t3.large","t3a.large"]`)...), "liftoff:nodeInstanceTypes", "at least 3"},
		{"arch mix", "dev", vals(append(awsv, "liftoff:nodeInstanceTypes", `["t3.large","t3a.large","t4g.large"]`)...), "liftoff:nodeInstanceTypes", "arm64"},
		{"node sizes", "dev", vals(append(awsv, "liftoff:nodeMin", "3", "liftoff:nodeMax", "2")...), "liftoff:nodeDesired", "between"},
		{"log types", "dev", vals(append(awsv, "liftoff:clusterLogTypes", `["api","everything"]`)...), "liftoff:clusterLogTypes[1]", "one of"},
		{"deployer arn", "dev", vals(append(awsv, "liftoff:deployers", `["bob"]`)...), "liftoff:deployers[0]", "ARN"},
		{"cert without domain", "dev", vals(append(awsv, "liftoff:certificateArn", "arn:aws:acm:eu-west-1:123456789012:certificate/abc-123")...), "liftoff:certificateArn", "domain"},
		{"nodes missing", "dev", vals(lab...), "liftoff:nodes", "is not set"},
		{"nodes not a list", "dev", vals(append(lab, "liftoff:nodes", `"10.0.0.1"`)...), "liftoff:nodes", "list"},
		{"no server", "dev", vals(append(lab, "liftoff:nodes", `[{"host":"a","role":"agent"}]`)...), "liftoff:nodes", "no server"},
		{"two servers", "dev", vals(append(lab, "liftoff:nodes", `[{"host":"a","role":"server"},{"host":"b","role":"server"}]`)...), "liftoff:nodes", "odd number"},
		{"bad role", "dev", vals(append(lab, "liftoff:nodes", `[{"host":"a","role":"master"}]`)...), "liftoff:nodes[0].role", "server or agent"},
		{"bad port", "dev", vals(append(lab, "liftoff:nodes", `[{"host":"a","role":"server","port":70000}]`)...), "liftoff:nodes[0].port", "1-65535"},
		{"bad host", "dev", vals(append(lab, "liftoff:nodes", `[{"host":"a b","role":"server"}]`)...), "liftoff:nodes[0].host", "host name"},
		{"dup host", "dev", vals(append(lab, "liftoff:nodes", `[{"host":"a","role":"server"},{"host":"a","role":"agent","name":"x"}]`)...), "liftoff:nodes[1].host", "same host"},
		{"k3s version", "dev", vals(append(lab, "liftoff:nodes", twoNodes, "liftoff:k3sVersion", "1.30")...), "liftoff:k3sVersion", "v1.34.2+k3s1"},
		{"airgap half", "dev", vals(append(lab, "liftoff:nodes", twoNodes, "liftoff:airgapBinary", "/k3s")...), "liftoff:airgapImages", "both"},
		{"version and channel", "dev", vals(append(lab, "liftoff:nodes", twoNodes, "liftoff:k3sVersion", "v1.33.1+k3s1", "liftoff:k3sChannel", "stable")...), "liftoff:k3sChannel", "keep one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.stack, c.vals)
			es, ok := AsErrors(err)
			if !ok {
				t.Fatalf("want config errors, got %v", err)
			}
			got := es.For(c.key)
			if len(got) == 0 {
				t.Fatalf("no error names %s: %v", c.key, err)
			}
			if msg := got[0].Problem + " " + got[0].Fix; !strings.Contains(msg, c.want) {
				t.Errorf("error for %s = %q, want it to mention %q", c.key, msg, c.want)
			}
		})
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	v := vals("liftoff:target", "kubeconfig", "liftoff:kubeconfig", "/k", "liftoff:database", "external")
	v["liftoff:databaseUrl"] = SecretValue("mysql://root:hunter2@db/x")
	_, err := Parse("dev", v)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("secret leaked or not validated: %v", err)
	}
	v["liftoff:databaseUrl"] = SecretValue("postgres://root:hunter2@db/x")
	s, err := Parse("dev", v)
	if err != nil {
		t.Fatal(err)
	}
	if s.Database.URL.Reveal() != "postgres://root:hunter2@db/x" {
		t.Error("secret not kept")
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := strings.ReplaceAll(sprintf(f, s), "\n", ""); strings.Contains(out, "hunter2") {
			t.Errorf("%s prints the secret: %s", f, out)
		}
	}
}

func TestReadStackFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Pulumi.dev.yaml"), []byte(`encryptionsalt: v1:abc
config:
  liftoff:target: homelab
  liftoff:replicas: 3
  liftoff:observability: false
  liftoff:sudoPassword:
    secure: v1:ciphertext
  liftoff:nodes:
    - host: 10.0.0.1
      role: server
      port: 2222
`), 0o600)
	v, err := ReadStackFile(dir, "dev")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse("dev", v)
	if err != nil {
		t.Fatal(err)
	}
	if s.App.Replicas != 3 || s.Observability.Enabled || !labOf(s).SudoPassword.IsSet() || labOf(s).SudoPassword.Known() ||
		labOf(s).Nodes[0].Port != 2222 {
		t.Errorf("got %+v %+v", s, labOf(s))
	}
	if _, err := ReadStackFile(dir, "prod"); err == nil {
		t.Error("missing stack file accepted")
	}
}

func TestInstanceArch(t *testing.T) {
	for typ, want := range map[string]string{"t3.large": "amd64", "t4g.large": "arm64", "m7gd.xlarge": "arm64", "c6gn.large": "arm64",
		"g5.xlarge": "amd64", "m5dn.large": "amd64", "inf2.xlarge": "amd64", "m6i.large": "amd64"} {
		if got := aws.InstanceArch(typ); got != want {
			t.Errorf("%s: %s, want %s", typ, got, want)
		}
	}
}

func TestDurations(t *testing.T) {
	for s, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "90m": 90 * time.Minute, "0s": 0} {
		got, err := ParseDuration(s)
		if err != nil || got != want {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	if FormatDuration(72*time.Hour) != "3d" || FormatDuration(90*time.Minute) != "1h30m0s" {
		t.Error("format")
	}
}

func TestAlertWebhook(t *testing.T) {
	for hook, ok := range map[string]bool{
		"https://hooks.slack.com/services/T0/B0/x":                             true,
		"https://discord.com/api/webhooks/1/abc":                               true,
		"https://discordapp.com/api/webhooks/1/abc":                            true,
		"mailto:ops@acme.dev?smarthost=smtp.acme.dev:587&from=alerts@acme.dev": true,
		"mailto:ops@acme.dev":                                                  false, // no relay: Alertmanager could not send
		"https://alerts.acme.dev/hook":                                         false, // a receiver kind liftoff does not render
		"http://hooks.slack.com/services/x":                                    false,
		"https://slack.com.evil.dev/x":                                         false,
		"not a url":                                                            false,
	} {
		v := vals("liftoff:target", "kubeconfig", "liftoff:kubeconfig", "/k")
		v["liftoff:alertWebhook"] = SecretValue(hook)
		_, err := Parse("dev", v)
		if (err == nil) != ok {
			t.Errorf("alertWebhook %q: %v", hook, err)
		}
		if err != nil && (!strings.Contains(err.Error(), "alertWebhook") || strings.Contains(err.Error(), hook)) {
			t.Errorf("alertWebhook %q: the error must name the key and never the value: %v", hook, err)
		}
	}
}

func TestChartMirror(t *testing.T) {
	for mirror, ok := range map[string]bool{
		"https://charts.acme.dev/liftoff": true,
		"http://10.0.0.5:8080":            true,
		"oci://registry.acme.dev/charts":  true,
		"charts.acme.dev":                 false,
		"ftp://charts.acme.dev/x":         false,
		"https://u:p@charts.acme.dev":     false,
		"oci://":                          false,
	} {
		v := vals("liftoff:target", "kubeconfig", "liftoff:kubeconfig", "/k", "liftoff:chartMirror", mirror)
		s, err := Parse("dev", v)
		if (err == nil) != ok || (ok && s.ChartMirror != mirror) {
			t.Errorf("chartMirror %q: %v", mirror, err)
		}
		if err != nil && !strings.Contains(err.Error(), "chartMirror") {
			t.Errorf("chartMirror %q: the error must name the key: %v", mirror, err)
		}
	}
}

func TestMonitoringImagesAndParts(t *testing.T) {
	const ref = "registry.internal/prometheus:v3.16.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	s, err := Parse("dev", vals("liftoff:target", "kubeconfig", "liftoff:kubeconfig", "/k", "liftoff:prometheusImage", ref,
		"liftoff:observabilityOff", "grafana,loki"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Observability.Images["prometheus"] != ref || len(s.Observability.Images) != 1 || strings.Join(s.Observability.Off, ",") != "grafana,loki" {
		t.Errorf("images %v, off %v", s.Observability.Images, s.Observability.Off)
	}
	for key, bad := range map[string]string{
		"liftoff:alertmanagerImage": "not a reference",
		"liftoff:observabilityOff":  "grafana,prometheus", // Prometheus always runs
	} {
		_, err := Parse("dev", vals("liftoff:target", "kubeconfig", "liftoff:kubeconfig", "/k", key, bad))
		if err == nil || !strings.Contains(err.Error(), ShortName(key)) {
			t.Errorf("%s=%q: want an error naming the key, got %v", key, bad, err)
		}
	}
}
