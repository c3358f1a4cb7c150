// Package config is liftoff's typed stack configuration: which keys each
// target reads, their defaults, and validation whose every error names the
// key, the bad value and the fix. It reads Pulumi.<stack>.yaml directly, so
// config is checked before any engine call.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// Target is where a stack runs.
type Target string

// The targets.
const (
	AWS        Target = "aws"
	Homelab    Target = "homelab"
	Kubeconfig Target = "kubeconfig"
)

// Targets lists every target.
var Targets = []Target{AWS, Homelab, Kubeconfig}

// Pinned versions; changing one is a reviewed change.
const (
	DefaultEKSVersion = "1.34"
	DefaultK3sVersion = "v1.34.2+k3s1"
)

// Stack is one stack's validated configuration.
type Stack struct {
	Name   string
	Target Target

	App            App
	Database       Store
	Cache          Store
	Observability  Observability
	ScaleDownDelay time.Duration
	// Preview is set on preview stacks.
	Preview *Preview
	// MaxPreviews is how many previews this stack may have at once;
	// PreviewDomain is the wildcard domain they are served under.
	MaxPreviews   int
	PreviewDomain string

	// Registry and StorageClass apply to homelab and kubeconfig.
	Registry     Registry
	StorageClass string

	AWS        *AWSConfig
	Homelab    *HomelabConfig
	Kubeconfig *KubeconfigConfig
}

// App is the shipped application.
type App struct {
	Name      string
	Namespace string
	Replicas  int
	Package   string
	Image     string
	Domain    string
}

// Store is a database or cache choice.
type Store struct {
	Mode string // rds, elasticache, in-cluster, external, none
	URL  Secret // set when Mode is external
}

// Observability is the monitoring stack's configuration.
type Observability struct {
	Enabled      bool
	Retention    time.Duration
	AlertWebhook Secret
}

// Preview marks a stack as a preview of a parent stack, whose cluster,
// registry and observability it uses.
type Preview struct {
	Of  string
	TTL time.Duration
}

// Registry is where images are pushed; an empty Repository means in-cluster.
type Registry struct {
	Repository string
	Insecure   bool
}

// AWSConfig is the aws target.
type AWSConfig struct {
	Region          string
	VPCCIDR         string
	ServiceCIDR     string
	AZCount         int
	NAT             string
	EKSVersion      string
	ClusterLogTypes []string
	Deployers       []string
	Nodes           NodeGroup
	DBInstanceClass string
	DBStorageGB     int
	DBBackupDays    int
	CacheNodeType   string
	ECRKeepImages   int
	CertificateARN  string
}

// NodeGroup is the EKS managed node group.
type NodeGroup struct {
	Capacity      string // spot or on-demand
	InstanceTypes []string
	Arch          string // amd64 or arm64, derived from the instance types
	Min           int
	Desired       int
	Max           int
	DiskGB        int
}

// HomelabConfig is the homelab target.
type HomelabConfig struct {
	Nodes             []Node
	K3sVersion        string
	K3sChannel        string
	TLSSANs           []string
	SudoPassword      Secret
	KnownHosts        string
	AcceptNewHostKeys bool
	AirgapBinary      string
	AirgapImages      string
	ImageDelivery     string // registry or import
	// HostKeys are the verified host keys by host:port, set by liftoff's
	// preflight before the program runs (not a config key).
	HostKeys map[string]string
}

// Node is one homelab host.
type Node struct {
	Name string `json:"name"` // Kubernetes node name; empty uses the host's hostname
	Host string `json:"host"`
	User string `json:"user"`
	Port int    `json:"port"`
	Key  string `json:"key"`
	Role string `json:"role"`
}

// Servers returns the server nodes in config order; the first initialises the cluster.
func (h *HomelabConfig) Servers() []Node { return h.byRole("server") }

// Agents returns the agent nodes in config order.
func (h *HomelabConfig) Agents() []Node { return h.byRole("agent") }

func (h *HomelabConfig) byRole(role string) []Node {
	var out []Node
	for _, n := range h.Nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}

// KubeconfigConfig is the kubeconfig target.
type KubeconfigConfig struct {
	Path    string
	Context string
}

// Value is one config value as stored.
type Value struct {
	// Text is the value: plain text, or JSON for lists and objects. It is empty
	// for a secret read from the stack file, whose ciphertext only the engine opens.
	Text   string
	Secret bool
	// Known is false for a secret whose plaintext is not available.
	Known bool
}

// Values maps full key names ("liftoff:replicas") to values.
type Values map[string]Value

// Plain returns a known, non-secret value.
func Plain(s string) Value { return Value{Text: s, Known: true} }

// SecretValue returns a known secret value.
func SecretValue(s string) Value { return Value{Text: s, Secret: true, Known: true} }

// Parse validates values for the named stack and returns the typed config.
// It reports every problem at once, as *Errors.
func Parse(stack string, values Values) (*Stack, error) {
	r := &reader{values: values}
	s := &Stack{Name: stack}
	r.check(stackNameRE.MatchString(stack), "stack", stack,
		"must be a lower-case DNS label of at most 30 characters (it names namespaces and cloud resources)",
		"pick a name like dev, prod or pr-42")

	for key := range values {
		if strings.HasPrefix(key, Namespace+":") {
			if _, ok := Lookup(key); !ok {
				fix := "remove it: liftoff config rm " + ShortName(key)
				if s := suggest(key); s != "" {
					fix = "did you mean " + ShortName(s) + "? " + fix
				}
				r.fail(key, values[key], "is not a liftoff setting", fix)
			}
		}
	}

	s.Target = Target(r.enum("liftoff:target", "", "aws", "homelab", "kubeconfig"))
	if _, ok := values["liftoff:target"]; !ok {
		r.fail("liftoff:target", Value{}, "is not set", "run liftoff init, or liftoff config set target kubeconfig")
	}
	r.target = s.Target

	s.App.Name = r.str("liftoff:app", "shortener", dnsLabel(40))
	s.Preview = nil
	if of := r.str("liftoff:previewOf", "", dnsLabel(30)); of != "" {
		r.check(of != stack, "liftoff:previewOf", of, "names this stack itself", "name the parent stack, e.g. prod")
		s.Preview = &Preview{Of: of, TTL: r.duration("liftoff:ttl", 72*time.Hour, time.Hour, 720*time.Hour)}
		for _, key := range []string{"liftoff:maxPreviews", "liftoff:previewDomain", "liftoff:observability", "liftoff:retention", "liftoff:alertWebhook"} {
			if v, ok := values[key]; ok {
				r.fail(key, v, "is the parent stack's setting: a preview uses its parent's", "remove it (liftoff config rm "+ShortName(key)+") and set it on "+of)
			}
		}
	} else {
		r.ignore("liftoff:ttl")
	}
	s.MaxPreviews = r.integer("liftoff:maxPreviews", 10, 1, 100)
	s.PreviewDomain = r.str("liftoff:previewDomain", "", domainName)
	defNS := s.App.Name
	if s.Preview != nil {
		defNS = s.App.Name + "-" + stack
	}
	s.App.Namespace = r.str("liftoff:namespace", defNS, dnsLabel(63))
	s.App.Replicas = r.integer("liftoff:replicas", 2, 1, 50)
	s.App.Package = r.str("liftoff:package", "./app/cmd/shortener", goPackage)
	s.App.Image = r.str("liftoff:image", "", imageRef)
	s.App.Domain = r.str("liftoff:domain", "", domainName)
	s.ScaleDownDelay = r.duration("liftoff:scaleDownDelay", 5*time.Minute, 0, 24*time.Hour)

	s.Observability = Observability{
		Enabled:      r.boolean("liftoff:observability", true) && s.Preview == nil,
		Retention:    r.duration("liftoff:retention", 7*24*time.Hour, 24*time.Hour, 90*24*time.Hour),
		AlertWebhook: r.secret("liftoff:alertWebhook", false, alertWebhook),
	}

	dbModes, cacheModes := []string{"in-cluster", "external"}, []string{"in-cluster", "external", "none"}
	dbDefault := "in-cluster"
	if s.Target == AWS && s.Preview == nil {
		dbModes, cacheModes = append(dbModes, "rds"), append(cacheModes, "elasticache")
		if s.Preview == nil {
			dbDefault = "rds"
		}
	}
	s.Database.Mode = r.enum("liftoff:database", dbDefault, dbModes...)
	s.Database.URL = r.secret("liftoff:databaseUrl", s.Database.Mode == "external", postgresURL)
	s.Cache.Mode = r.enum("liftoff:cache", "in-cluster", cacheModes...)
	s.Cache.URL = r.secret("liftoff:cacheUrl", s.Cache.Mode == "external", redisURL)

	if s.Preview != nil {
		// A preview runs on its parent's cluster and registry, read from the
		// parent's outputs: its own target settings would be ignored.
		for key, v := range values {
			if k, ok := Lookup(key); ok && k.Targets != nil {
				r.fail(key, v, "is read from the parent stack's outputs in a preview", "remove it: liftoff config rm "+ShortName(key))
			}
		}
		if err := r.err(); err != nil {
			return nil, err
		}
		return s, nil
	}
	switch s.Target {
	case AWS:
		s.AWS = parseAWS(r, s)
	case Homelab:
		s.Homelab = parseHomelab(r)
	case Kubeconfig:
		s.Kubeconfig = &KubeconfigConfig{
			Path:    r.str("liftoff:kubeconfig", "", nonEmpty),
			Context: r.str("liftoff:context", "", nil),
		}
	}
	if s.Target == Homelab || s.Target == Kubeconfig {
		s.Registry = Registry{
			Repository: r.str("liftoff:registry", "", repository),
			Insecure:   r.boolean("liftoff:insecureRegistry", false),
		}
		s.StorageClass = r.str("liftoff:storageClass", "", dnsSubdomain)
	}

	// Keys of another target are an error: they would be silently ignored.
	for key, v := range values {
		if k, ok := Lookup(key); ok && s.Target != "" && !k.AppliesTo(s.Target) && !r.used[key] {
			r.fail(key, v, fmt.Sprintf("does not apply to target %s", s.Target), "remove it: liftoff config rm "+ShortName(key))
		}
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	return s, nil
}

func parseAWS(r *reader, s *Stack) *AWSConfig {
	a := &AWSConfig{
		Region:          r.str("aws:region", "", regionName),
		VPCCIDR:         r.str("liftoff:vpcCidr", "10.0.0.0/16", cidr(16, 20)),
		ServiceCIDR:     "172.20.0.0/16",
		AZCount:         r.integer("liftoff:azCount", 2, 2, 3),
		NAT:             r.enum("liftoff:nat", "single", "single", "per-az", "none"),
		EKSVersion:      r.str("liftoff:eksVersion", DefaultEKSVersion, eksVersion),
		ClusterLogTypes: r.list("liftoff:clusterLogTypes", []string{"api", "audit", "authenticator"}, oneOf("api", "audit", "authenticator", "controllerManager", "scheduler")),
		Deployers:       r.list("liftoff:deployers", nil, iamPrincipalARN),
		Nodes: NodeGroup{
			Capacity:      r.enum("liftoff:nodeCapacity", "spot", "spot", "on-demand"),
			InstanceTypes: r.list("liftoff:nodeInstanceTypes", []string{"t3.large", "t3a.large", "m5.large", "m5a.large", "m6i.large"}, instanceType),
			Min:           r.integer("liftoff:nodeMin", 2, 1, 100),
			Desired:       r.integer("liftoff:nodeDesired", 2, 1, 100),
			Max:           r.integer("liftoff:nodeMax", 5, 1, 100),
			DiskGB:        r.integer("liftoff:nodeDiskGb", 40, 20, 1000),
		},
		DBInstanceClass: r.str("liftoff:dbInstanceClass", "db.t4g.micro", pattern(`^db\.[a-z0-9]+\.[a-z0-9]+$`, "db.t4g.micro")),
		DBStorageGB:     r.integer("liftoff:dbStorageGb", 20, 20, 1000),
		DBBackupDays:    r.integer("liftoff:dbBackupDays", 7, 1, 35),
		CacheNodeType:   r.str("liftoff:cacheNodeType", "cache.t4g.micro", pattern(`^cache\.[a-z0-9]+\.[a-z0-9]+$`, "cache.t4g.micro")),
		ECRKeepImages:   r.integer("liftoff:ecrKeepImages", 30, 1, 1000),
		CertificateARN:  r.str("liftoff:certificateArn", "", pattern(`^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$`, "arn:aws:acm:eu-west-1:123456789012:certificate/...")),
	}
	if a.Region == "" {
		r.fail("aws:region", Value{}, "is not set", "liftoff config set aws:region eu-west-1")
	}
	if !r.failed("aws:region") {
		r.check(regionName(a.Region) == nil, "aws:region", a.Region, "", "")
	}
	n := &a.Nodes
	r.check(n.Min <= n.Desired && n.Desired <= n.Max, "liftoff:nodeDesired", strconv.Itoa(n.Desired),
		fmt.Sprintf("must lie between nodeMin (%d) and nodeMax (%d)", n.Min, n.Max), "set nodeMin <= nodeDesired <= nodeMax")
	if n.Capacity == "spot" {
		r.check(len(n.InstanceTypes) >= 2, "liftoff:nodeInstanceTypes", strings.Join(n.InstanceTypes, ","),
			"spot capacity needs at least 2 instance types, so a reclaimed pool can be replaced from another",
			`add types of the same size, e.g. ["t3.large","t3a.large","m5.large"], or set nodeCapacity on-demand`)
	}
	arches := map[string]bool{}
	for _, t := range n.InstanceTypes {
		arches[InstanceArch(t)] = true
	}
	if r.check(len(arches) <= 1, "liftoff:nodeInstanceTypes", strings.Join(n.InstanceTypes, ","),
		"mixes arm64 (Graviton) and amd64 types; one node group runs one AMI architecture",
		"use only Graviton types (t4g, m7g, ...) or only x86 types") && len(n.InstanceTypes) > 0 {
		n.Arch = InstanceArch(n.InstanceTypes[0])
	}
	if vpc, err := netip.ParsePrefix(a.VPCCIDR); err == nil {
		svc := netip.MustParsePrefix(a.ServiceCIDR)
		if vpc.Overlaps(svc) {
			a.ServiceCIDR = "10.100.0.0/16"
			svc = netip.MustParsePrefix(a.ServiceCIDR)
		}
		r.check(!vpc.Overlaps(svc), "liftoff:vpcCidr", a.VPCCIDR, "overlaps both EKS service ranges (172.20.0.0/16 and 10.100.0.0/16)", "use a range such as 10.0.0.0/16")
	}
	if a.CertificateARN != "" {
		r.check(s.App.Domain != "", "liftoff:certificateArn", a.CertificateARN, "needs a domain to serve", "liftoff config set domain sho.rt")
	}
	return a
}

func parseHomelab(r *reader) *HomelabConfig {
	h := &HomelabConfig{
		K3sChannel:        r.str("liftoff:k3sChannel", "", pattern(`^(stable|latest|testing|v1\.\d+)$`, "stable")),
		TLSSANs:           r.list("liftoff:tlsSans", nil, hostOrIP),
		SudoPassword:      r.secret("liftoff:sudoPassword", false, nil),
		KnownHosts:        r.str("liftoff:knownHosts", "~/.ssh/known_hosts", nonEmpty),
		AcceptNewHostKeys: r.boolean("liftoff:acceptNewHostKeys", false),
		AirgapBinary:      r.str("liftoff:airgapBinary", "", nil),
		AirgapImages:      r.str("liftoff:airgapImages", "", nil),
		ImageDelivery:     r.enum("liftoff:imageDelivery", "registry", "registry", "import"),
	}
	defVersion := DefaultK3sVersion
	if h.K3sChannel != "" {
		defVersion = ""
		r.check(r.values["liftoff:k3sVersion"].Text == "", "liftoff:k3sChannel", h.K3sChannel, "is set together with k3sVersion", "keep one: liftoff config rm k3sVersion")
	}
	h.K3sVersion = r.str("liftoff:k3sVersion", defVersion, pattern(`^v1\.\d+\.\d+\+k3s\d+$`, DefaultK3sVersion))
	r.check((h.AirgapBinary == "") == (h.AirgapImages == ""), "liftoff:airgapImages", h.AirgapImages,
		"air-gap mode needs both the k3s binary and its images tarball", "set both airgapBinary and airgapImages")
	r.check(h.AirgapBinary == "" || h.K3sChannel == "", "liftoff:k3sChannel", h.K3sChannel, "cannot be resolved in air-gap mode", "pin k3sVersion to the version of the uploaded binary")

	v, ok := r.take("liftoff:nodes")
	if !ok {
		r.fail("liftoff:nodes", Value{}, "is not set", `liftoff config set --path 'nodes[0].host' 192.168.1.10 (then user, key, role)`)
		return h
	}
	if err := json.Unmarshal([]byte(v.Text), &h.Nodes); err != nil {
		r.fail("liftoff:nodes", v, "must be a list of {host, user, port, key, role}", "see README, homelab config")
		return h
	}
	seenHost, seenName := map[string]int{}, map[string]int{}
	for i := range h.Nodes {
		n := &h.Nodes[i]
		key := fmt.Sprintf("liftoff:nodes[%d]", i)
		if n.User == "" {
			n.User = "root"
		}
		if n.Port == 0 {
			n.Port = 22
		}
		r.check(hostOrIP(n.Host) == nil, key+".host", n.Host, "must be a host name or IP address", "set the address the hosts are reachable at")
		r.check(n.Port > 0 && n.Port < 65536, key+".port", strconv.Itoa(n.Port), "must be 1-65535", "use 22 unless sshd listens elsewhere")
		r.check(n.Role == "server" || n.Role == "agent", key+".role", n.Role, "must be server or agent", "the first server initialises the cluster; others join")
		r.check(userRE.MatchString(n.User), key+".user", n.User, "is not a valid user name", "use the SSH login, e.g. root or ubuntu")
		r.check(n.Name == "" || len(n.Name) <= 63 && dnsSubdomain(n.Name) == nil, key+".name", n.Name, "must be a lower-case DNS name (it becomes the Kubernetes node name)", "set name: office-1, or leave it out to use the host's hostname")
		addr := fmt.Sprintf("%s:%d", n.Host, n.Port)
		if j, dup := seenHost[addr]; dup {
			r.fail(key+".host", Plain(addr), fmt.Sprintf("is the same host as nodes[%d]", j), "list each host once")
		}
		if j, dup := seenName[n.Name]; dup && n.Name != "" {
			r.fail(key+".name", Plain(n.Name), fmt.Sprintf("is the same name as nodes[%d]", j), "give each node a unique name")
		}
		seenHost[addr], seenName[n.Name] = i, i
	}
	servers := len(h.Servers())
	switch {
	case len(h.Nodes) == 0:
		r.fail("liftoff:nodes", v, "lists no hosts", "add at least one server")
	case servers == 0:
		r.fail("liftoff:nodes", Plain(fmt.Sprintf("%d agents", len(h.Nodes))), "has no server", "give the first host role: server")
	case servers%2 == 0:
		r.fail("liftoff:nodes", Plain(fmt.Sprintf("%d servers", servers)), "needs an odd number of servers: embedded etcd loses quorum with half of them down", "use 1 server, or 3 for HA")
	}
	return h
}

// InstanceArch returns the CPU architecture of an EC2 instance type: Graviton
// families carry a "g" after their generation digit (t4g, m7gd, c6gn).
func InstanceArch(t string) string {
	family, _, _ := strings.Cut(t, ".")
	i := strings.IndexFunc(family, func(r rune) bool { return r >= '0' && r <= '9' })
	if i > 0 && strings.ContainsRune(strings.TrimLeft(family[i:], "0123456789"), 'g') {
		return "arm64"
	}
	return "amd64"
}

// Secret holds a secret value. It prints as [secret] in every format.
type Secret struct {
	value string
	set   bool
	known bool
}

// NewSecret wraps a known secret value.
func NewSecret(v string) Secret { return Secret{value: v, set: v != "", known: true} }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s.set }

// Known reports whether the plaintext is available (only inside the engine or after config set).
func (s Secret) Known() bool { return s.known }

// Reveal returns the plaintext. Callers must not print it.
func (s Secret) Reveal() string { return s.value }

func (s Secret) String() string               { return "[secret]" }
func (s Secret) GoString() string             { return "[secret]" }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"[secret]"`), nil }

// FieldError is one invalid key.
type FieldError struct {
	Key     string
	Value   string // masked for secrets
	Problem string
	Fix     string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(ShortName(e.Key))
	if e.Value != "" {
		fmt.Fprintf(&b, " = %q", e.Value)
	}
	b.WriteString(": " + e.Problem)
	if e.Fix != "" {
		b.WriteString(" (fix: " + e.Fix + ")")
	}
	return b.String()
}

// Errors is every problem found in one config.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	if len(lines) == 1 {
		return "invalid config: " + lines[0]
	}
	return fmt.Sprintf("invalid config (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// For returns the errors about one key (and its sub-keys).
func (es Errors) For(key string) Errors {
	var out Errors
	for _, e := range es {
		if e.Key == key || strings.HasPrefix(e.Key, key+"[") || strings.HasPrefix(e.Key, key+".") {
			out = append(out, e)
		}
	}
	return out
}

// AsErrors extracts field errors from err.
func AsErrors(err error) (Errors, bool) {
	var es Errors
	ok := errors.As(err, &es)
	return es, ok
}

// reader reads typed values, collecting one error per bad key.
type reader struct {
	values Values
	target Target
	used   map[string]bool
	errs   Errors
}

func (r *reader) take(key string) (Value, bool) {
	if r.used == nil {
		r.used = map[string]bool{}
	}
	r.used[key] = true
	v, ok := r.values[key]
	if ok && v.Known && v.Text == "" && !v.Secret {
		return v, false // an empty plain value means unset
	}
	return v, ok
}

func (r *reader) ignore(keys ...string) {
	for _, k := range keys {
		if v, ok := r.values[k]; ok {
			r.take(k)
			r.fail(k, v, "only applies to preview stacks", "set previewOf, or remove it: liftoff config rm "+ShortName(k))
		}
	}
}

func (r *reader) fail(key string, v Value, problem, fix string) {
	shown := v.Text
	if v.Secret {
		shown = ""
	}
	r.errs = append(r.errs, &FieldError{Key: key, Value: shown, Problem: problem, Fix: fix})
}

func (r *reader) failed(key string) bool { return len(r.errs.For(key)) > 0 }

// check records a problem when ok is false and reports ok.
func (r *reader) check(ok bool, key, value, problem, fix string) bool {
	if !ok && problem != "" {
		r.errs = append(r.errs, &FieldError{Key: key, Value: value, Problem: problem, Fix: fix})
	}
	return ok
}

func (r *reader) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(r.errs, func(a, b *FieldError) int { return strings.Compare(a.Key, b.Key) })
	return r.errs
}

// problem is a validation failure of one value.
type problem struct{ what, fix string }

func (p *problem) Error() string { return p.what }

func bad(what, fix string) error { return &problem{what, fix} }

func (r *reader) validate(key string, v Value, text string, check func(string) error) bool {
	if check == nil || !v.Known && v.Secret {
		return true
	}
	if err := check(text); err != nil {
		fix := ""
		var p *problem
		if errors.As(err, &p) {
			fix = p.fix
		}
		r.fail(key, v, err.Error(), fix)
		return false
	}
	return true
}

func (r *reader) str(key, def string, check func(string) error) string {
	v, ok := r.take(key)
	if !ok {
		return def
	}
	if v.Secret {
		r.fail(key, v, "is stored as a secret but is not secret", "liftoff config set "+ShortName(key)+" VALUE (without --secret)")
		return def
	}
	if !r.validate(key, v, v.Text, check) {
		return def
	}
	return v.Text
}

func (r *reader) enum(key, def string, allowed ...string) string {
	return r.str(key, def, oneOf(allowed...))
}

func (r *reader) integer(key string, def, lo, hi int) int {
	s := r.str(key, "", nil)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		r.fail(key, Plain(s), fmt.Sprintf("must be a whole number from %d to %d", lo, hi), fmt.Sprintf("liftoff config set %s %d", ShortName(key), def))
		return def
	}
	return n
}

func (r *reader) boolean(key string, def bool) bool {
	s := r.str(key, "", nil)
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.fail(key, Plain(s), "must be true or false", fmt.Sprintf("liftoff config set %s %t", ShortName(key), def))
		return def
	}
	return b
}

func (r *reader) duration(key string, def, lo, hi time.Duration) time.Duration {
	s := r.str(key, "", nil)
	if s == "" {
		return def
	}
	d, err := ParseDuration(s)
	if err != nil || d < lo || d > hi {
		r.fail(key, Plain(s), fmt.Sprintf("must be a duration from %s to %s", FormatDuration(lo), FormatDuration(hi)), fmt.Sprintf("liftoff config set %s %s", ShortName(key), FormatDuration(def)))
		return def
	}
	return d
}

func (r *reader) list(key string, def []string, check func(string) error) []string {
	v, ok := r.take(key)
	if !ok {
		return def
	}
	var items []string
	if err := json.Unmarshal([]byte(v.Text), &items); err != nil {
		// A bare comma-separated string is accepted for convenience.
		if strings.HasPrefix(strings.TrimSpace(v.Text), "[") {
			r.fail(key, v, "must be a list of strings", fmt.Sprintf(`liftoff config set %s '["a","b"]'`, ShortName(key)))
			return def
		}
		for _, s := range strings.Split(v.Text, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	}
	for i, it := range items {
		if !r.validate(fmt.Sprintf("%s[%d]", key, i), Plain(it), it, check) {
			return def
		}
	}
	return items
}

func (r *reader) secret(key string, required bool, check func(string) error) Secret {
	v, ok := r.take(key)
	if !ok {
		if required {
			r.fail(key, Value{}, "is required here", "liftoff config set --secret "+ShortName(key)+" VALUE")
		}
		return Secret{}
	}
	if !v.Secret {
		r.fail(key, Value{Secret: true}, "is stored in plain text", "store it encrypted: liftoff config set --secret "+ShortName(key)+" VALUE")
		return Secret{}
	}
	if v.Known && !r.validate(key, v, v.Text, check) {
		return Secret{}
	}
	return Secret{value: v.Text, set: true, known: v.Known}
}

var (
	stackNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$`)
	userRE      = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)
	dnsLabelRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

func oneOf(allowed ...string) func(string) error {
	return func(s string) error {
		if slices.Contains(allowed, s) {
			return nil
		}
		return bad("must be one of "+strings.Join(allowed, ", "), "use one of "+strings.Join(allowed, ", "))
	}
}

func pattern(re, example string) func(string) error {
	c := regexp.MustCompile(re)
	return func(s string) error {
		if c.MatchString(s) {
			return nil
		}
		return bad("is not in the expected form", "use a value like "+example)
	}
}

func nonEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return bad("must not be empty", "set a value")
	}
	return nil
}

func dnsLabel(maxLen int) func(string) error {
	return func(s string) error {
		if len(s) <= maxLen && dnsLabelRE.MatchString(s) {
			return nil
		}
		return bad(fmt.Sprintf("must be lower-case letters, digits and '-', at most %d characters", maxLen), "use a name like shortener")
	}
}

func dnsSubdomain(s string) error {
	for _, part := range strings.Split(s, ".") {
		if dnsLabelRE.MatchString(part) {
			continue
		}
		return bad("must be a lower-case DNS name", "use a name like gp3 or local-path")
	}
	return nil
}

func domainName(s string) error {
	if len(s) <= 253 && strings.Contains(s, ".") && dnsSubdomain(s) == nil {
		return nil
	}
	return bad("must be a lower-case DNS name with a dot", "use a name like sho.rt")
}

func hostOrIP(s string) error {
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if s != "" && len(s) <= 253 && dnsSubdomain(strings.ToLower(s)) == nil {
		return nil
	}
	return bad("must be a host name or IP address", "use e.g. 192.168.1.10 or office-1.lan")
}

func regionName(s string) error {
	if regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$`).MatchString(s) {
		return nil
	}
	return bad("is not an AWS region", "use a region like eu-west-1 or us-east-2")
}

func eksVersion(s string) error {
	var minor int
	if _, err := fmt.Sscanf(s, "1.%d", &minor); err != nil || fmt.Sprintf("1.%d", minor) != s {
		return bad("must be 1.N", "use "+DefaultEKSVersion)
	}
	// The range liftoff pins managed add-on versions for (components/cluster.AddonVersions).
	if minor < 32 || minor > 34 {
		return bad("is not a version liftoff pins EKS add-ons for (1.32-1.34)", "use "+DefaultEKSVersion)
	}
	return nil
}

func instanceType(s string) error {
	if regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`).MatchString(s) {
		return nil
	}
	return bad("is not an EC2 instance type", "use a type like t3.large")
}

func iamPrincipalARN(s string) error {
	if regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$`).MatchString(s) {
		return nil
	}
	return bad("is not an IAM role or user ARN", "use arn:aws:iam::123456789012:role/deployer")
}

func cidr(minBits, maxBits int) func(string) error {
	return func(s string) error {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || p.Masked() != p {
			return bad("is not an IPv4 network in CIDR form", "use 10.0.0.0/16")
		}
		if p.Bits() < minBits || p.Bits() > maxBits {
			return bad(fmt.Sprintf("must be between /%d and /%d", minBits, maxBits), "use 10.0.0.0/16")
		}
		if !p.Addr().IsPrivate() {
			return bad("is not a private (RFC 1918) range", "use 10.0.0.0/16")
		}
		return nil
	}
}

func goPackage(s string) error {
	if s != "" && !strings.ContainsAny(s, " \t\n") {
		return nil
	}
	return bad("is not a Go package path", "use ./app/cmd/shortener")
}

func imageRef(s string) error {
	if _, err := name.ParseReference(s, name.StrictValidation); err != nil {
		if _, err := name.ParseReference(s); err != nil {
			return bad("is not an image reference", "use registry.example.com/app@sha256:... or registry.example.com/app:tag")
		}
	}
	return nil
}

func repository(s string) error {
	if _, err := name.NewRepository(s); err != nil {
		return bad("is not a registry repository", "use a repository like ghcr.io/acme/shortener")
	}
	return nil
}

func postgresURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return bad("must be a postgres:// URL with a host", "postgres://user:password@host:5432/db?sslmode=require")
	}
	return nil
}

func redisURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return bad("must be a redis:// or rediss:// URL with a host", "redis://host:6379/0")
	}
	return nil
}

func alertWebhook(s string) error {
	u, err := url.Parse(s)
	if err == nil && (u.Scheme == "https" && u.Host != "" || u.Scheme == "mailto" && strings.Contains(u.Opaque, "@")) {
		return nil
	}
	return bad("must be an https:// webhook URL or mailto:address", "https://hooks.slack.com/services/...")
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
