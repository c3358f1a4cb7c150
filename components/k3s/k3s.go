// Package k3s installs k3s over SSH on the user's own machines with
// pulumi-command: the shell scripts it runs (preflight, install, uninstall,
// kubeconfig) are embedded in internal/hostscript, reviewed and tested as code.
// The first server initialises the cluster, further servers join it (embedded
// etcd), agents join last; upgrades go server by server, then the agents.
package k3s

import (
	"github.com/liftoff-dev/liftoff/internal/hostscript"

	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"
)

// RewriteKubeconfig points k3s's kubeconfig at server (it says 127.0.0.1)
// and names its cluster, user and context after the stack.
func RewriteKubeconfig(kubeconfig, server, name string) (string, error) {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(kubeconfig), &doc); err != nil {
		return "", fmt.Errorf("k3s kubeconfig: %w", err)
	}
	rename := func(key string, f func(map[string]any)) {
		items, _ := doc[key].([]any)
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				continue
			}
			m["name"] = name
			if f != nil {
				f(m)
			}
		}
	}
	rename("clusters", func(m map[string]any) {
		if c, ok := m["cluster"].(map[string]any); ok {
			c["server"] = server
		}
	})
	rename("users", nil)
	rename("contexts", func(m map[string]any) {
		if c, ok := m["context"].(map[string]any); ok {
			c["cluster"], c["user"] = name, name
		}
	})
	if _, ok := doc["clusters"]; !ok {
		return "", fmt.Errorf("k3s kubeconfig has no clusters")
	}
	doc["current-context"] = name
	b, err := yaml.Marshal(doc)
	return string(b), err
}

// Node is one host.
type Node struct {
	Name string // Kubernetes node name; empty keeps the hostname
	Host string
	Port int
	User string
	// PrivateKey is the key's content (a secret); empty uses the SSH agent.
	PrivateKey pulumi.StringInput
	// HostKey is the host's verified key (authorized_keys format), pinned in state.
	HostKey string
	Role    string // server or agent
}

// Args configure the cluster.
type Args struct {
	Nodes   []Node
	Version string // pinned, or empty with Channel
	Channel string
	TLSSANs []string
	// SudoPassword is needed when the users are not root and sudo asks for one (a secret).
	SudoPassword    pulumi.StringInput
	HasSudoPassword bool
	// AirgapBinary and AirgapImages are local files uploaded instead of downloading.
	AirgapBinary, AirgapImages string
	// RegistryMirror is host:port of the in-cluster registry, written to registries.yaml.
	RegistryMirror string
	// Context names the kubeconfig's cluster, user and context (the stack).
	Context string
	// Token joins servers and agents to the cluster (a secret liftoff generates).
	Token pulumi.StringInput
}

// Validate checks args before any resource is declared.
func (a *Args) Validate() error {
	if a.Token == nil {
		return fmt.Errorf("k3s: the cluster token is required")
	}
	servers := 0
	for i, n := range a.Nodes {
		if n.Host == "" || n.Port < 1 || n.User == "" {
			return fmt.Errorf("k3s: node %d needs host, port and user", i)
		}
		// pulumi-command trusts any host key unless given one: without it
		// the install would send the cluster token to whoever answers.
		if n.HostKey == "" {
			return fmt.Errorf("k3s: node %d (%s) has no verified host key: liftoff up verifies each node's key (known_hosts, or --accept-new-host-keys) and pins it before the install; the plain pulumi CLI cannot, so run liftoff up", i, n.Host)
		}
		switch n.Role {
		case "server":
			servers++
		case "agent":
		default:
			return fmt.Errorf("k3s: node %d (%s) has role %q: server or agent", i, n.Host, n.Role)
		}
	}
	switch {
	case len(a.Nodes) == 0 || a.Nodes[0].Role != "server":
		return fmt.Errorf("k3s: the first node must be a server: it initialises the cluster")
	case servers%2 == 0:
		return fmt.Errorf("k3s: %d servers; embedded etcd needs an odd number", servers)
	case a.Version == "" && a.Channel == "":
		return fmt.Errorf("k3s: a version or a channel is required")
	case (a.AirgapBinary == "") != (a.AirgapImages == ""):
		return fmt.Errorf("k3s: air-gap needs both the binary and the images tarball")
	case a.Context == "":
		return fmt.Errorf("k3s: a context name is required")
	}
	return nil
}

// Cluster is k3s on the nodes.
type Cluster struct {
	pulumi.ResourceState
	// Kubeconfig reaches the API server on the first server, context named after the stack (a secret).
	Kubeconfig pulumi.StringOutput `pulumi:"kubeconfig"`
	// Server is the API server URL.
	Server pulumi.StringOutput `pulumi:"server"`
	// Nodes lists "role host" per node.
	Nodes pulumi.StringArrayOutput `pulumi:"nodes"`
	// HostKeys are the pinned host keys by host:port.
	HostKeys pulumi.StringMapOutput `pulumi:"hostKeys"`
	// Ready is the last install, for DependsOn.
	Ready pulumi.Resource
}

// Upload paths of air-gap files on the hosts, relative to the SSH user's
// home (never a predictable name in a world-writable /tmp); install.sh
// resolves them against that home, also under sudo.
const (
	RemoteBinary = ".liftoff-k3s"
	RemoteImages = ".liftoff-k3s-airgap-images.tar"
)

// New declares k3s on every node.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Cluster, error) {
	if args == nil {
		return nil, fmt.Errorf("k3s: args are required")
	}
	if err := args.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{}
	if err := ctx.RegisterComponentResource("liftoff:k3s:Cluster", name, c, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(c)
	token := pulumi.ToSecret(args.Token).(pulumi.StringOutput)
	first := args.Nodes[0]
	serverURL := args.ServerURL()
	sudo := pulumi.StringInput(pulumi.String(""))
	if args.HasSudoPassword && args.SudoPassword != nil {
		sudo = args.SudoPassword
	}

	var prev []pulumi.Resource // servers one at a time, then every agent after the last server
	var lastServer *remote.Command
	var nodes pulumi.StringArray
	hostKeys := pulumi.StringMap{}
	for i, n := range args.Order() {
		id := fmt.Sprintf("%s-%s-%d", name, n.Role, i)
		conn := connection(n)
		if n.HostKey != "" {
			hostKeys[net.JoinHostPort(n.Host, strconv.Itoa(n.Port))] = pulumi.String(n.HostKey)
		}
		env := args.InstallEnv(i)
		deps := append([]pulumi.Resource{}, prev...)
		if args.AirgapBinary != "" {
			for _, f := range []struct{ suffix, local, remote string }{{"binary", args.AirgapBinary, RemoteBinary}, {"images", args.AirgapImages, RemoteImages}} {
				cp, err := remote.NewCopyToRemote(ctx, id+"-"+f.suffix, &remote.CopyToRemoteArgs{Connection: conn,
					Source: pulumi.NewFileAsset(f.local), RemotePath: pulumi.String(f.remote)}, child)
				if err != nil {
					return nil, err
				}
				deps = append(deps, cp)
			}
		}
		user := n.User
		stdin := pulumi.All(token, sudo).ApplyT(func(v []any) string {
			e := maps.Clone(env)
			e["K3S_TOKEN"] = v[0].(string)
			return hostscript.Stdin(hostscript.SudoLine(user, v[1].(string)), e, hostscript.Script("install.sh"))
		}).(pulumi.StringOutput)
		shell := hostscript.Shell(n.User, args.HasSudoPassword)
		install, err := remote.NewCommand(ctx, id, &remote.CommandArgs{Connection: conn,
			Create: pulumi.String(shell), Update: pulumi.String(shell),
			// Delete reads only the sudo password line of stdin, if any.
			Delete:  pulumi.String(UninstallCommand(n.User, args.HasSudoPassword)),
			Stdin:   pulumi.ToSecret(stdin).(pulumi.StringOutput),
			Logging: remote.LoggingStdoutAndStderr,
		}, child, pulumi.DependsOn(deps), pulumi.AdditionalSecretOutputs([]string{"stdin"}))
		if err != nil {
			return nil, err
		}
		if n.Role == "server" {
			prev, lastServer = []pulumi.Resource{install}, install
		} else {
			prev = []pulumi.Resource{lastServer} // agents upgrade together, after every server
		}
		c.Ready = install
		nodes = append(nodes, pulumi.String(n.Role+" "+n.Host))
	}

	fetch, err := remote.NewCommand(ctx, name+"-kubeconfig", &remote.CommandArgs{Connection: connection(first),
		Create: pulumi.String(hostscript.Shell(first.User, args.HasSudoPassword)),
		Stdin: pulumi.ToSecret(sudo.ToStringOutput().ApplyT(func(p string) string {
			return hostscript.Stdin(hostscript.SudoLine(first.User, p), nil, hostscript.Script("kubeconfig.sh"))
		})).(pulumi.StringOutput),
		// Refetched after the servers are reinstalled or upgraded (the last
		// one's output changes with every run of its install).
		Triggers: pulumi.Array{lastServer.Stdout},
		Logging:  remote.LoggingNone,
	}, child, pulumi.DependsOn([]pulumi.Resource{c.Ready}), pulumi.AdditionalSecretOutputs([]string{"stdout", "stdin"}))
	if err != nil {
		return nil, err
	}
	c.Server = pulumi.String(serverURL).ToStringOutput()
	c.Kubeconfig = pulumi.ToSecret(fetch.Stdout.ApplyT(func(s string) (string, error) {
		return RewriteKubeconfig(s, serverURL, args.Context)
	})).(pulumi.StringOutput)
	c.Nodes = nodes.ToStringArrayOutput()
	c.HostKeys = hostKeys.ToStringMapOutput()
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"kubeconfig": c.Kubeconfig, "server": c.Server, "nodes": c.Nodes, "hostKeys": c.HostKeys})
}

// connection is how pulumi-command reaches a node: its key (or the SSH
// agent) and, once preflight verified it, its pinned host key.
func connection(n Node) remote.ConnectionArgs {
	conn := remote.ConnectionArgs{Host: pulumi.String(n.Host), Port: pulumi.Float64(float64(n.Port)), User: pulumi.String(n.User)}
	if n.PrivateKey != nil {
		conn.PrivateKey = n.PrivateKey
	}
	if n.HostKey != "" {
		conn.HostKey = pulumi.String(n.HostKey)
	}
	return conn
}

// Order is the install and upgrade order: servers in config order (the
// first initialises the cluster), then agents.
func (a *Args) Order() []Node {
	return append(byRole(a.Nodes, "server"), byRole(a.Nodes, "agent")...)
}

// ServerURL is the API server every node joins: the first server's.
func (a *Args) ServerURL() string { return "https://" + net.JoinHostPort(a.Nodes[0].Host, "6443") }

// InstallEnv is install.sh's input for the i-th node in Order, all but
// K3S_TOKEN (a secret the caller adds).
func (a *Args) InstallEnv(i int) map[string]string {
	n := a.Order()[i]
	env := map[string]string{"ROLE": n.Role, "K3S_VERSION": a.Version, "K3S_CHANNEL": a.Channel, "NODE_NAME": n.Name,
		"TLS_SANS": strings.Join(append([]string{a.Nodes[0].Host}, a.TLSSANs...), ","), "REGISTRY_MIRROR": a.RegistryMirror}
	if i > 0 {
		env["K3S_URL"] = a.ServerURL()
	}
	if i == 0 && len(byRole(a.Nodes, "server")) > 1 {
		env["CLUSTER_INIT"] = "1"
	}
	if a.AirgapBinary != "" {
		env["AIRGAP_BINARY"], env["AIRGAP_IMAGES"] = RemoteBinary, RemoteImages
	}
	return env
}

// UninstallCommand is the delete command for a node's user.
func UninstallCommand(user string, sudoPassword bool) string {
	return strings.Replace(hostscript.Shell(user, sudoPassword), "bash -s", "bash -c "+hostscript.Quote(hostscript.Script("uninstall.sh")), 1)
}

func byRole(nodes []Node, role string) []Node {
	var out []Node
	for _, n := range nodes {
		if n.Role == role {
			out = append(out, n)
		}
	}
	return out
}
