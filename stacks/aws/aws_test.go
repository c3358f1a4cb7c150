package aws_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-dev/liftoff/components/cluster"
	"github.com/liftoff-dev/liftoff/internal/config"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/stacks"
	awsstack "github.com/liftoff-dev/liftoff/stacks/aws"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	callerARN = "arn:aws:sts::123456789012:assumed-role/Founder/session-1"
	issuer    = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789"
	clusterSG = "sg-cluster0001"
	rdsSecret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234"
	plainDB   = "postgres://app:pw-in-plain@db.example.com:5432/app"
)

func mocks() *testenv.Mocks {
	return &testenv.Mocks{
		MockState: func(typ, name string, in resource.PropertyMap) resource.PropertyMap {
			s := func(v string) resource.PropertyValue { return resource.NewStringProperty(v) }
			arn := s("arn:aws:" + strings.ReplaceAll(typ, ":", "-") + "::123456789012:" + name)
			switch typ {
			case "aws:eks/cluster:Cluster":
				return resource.PropertyMap{"arn": arn, "endpoint": s("https://ABC.gr7.eu-west-1.eks.amazonaws.com"),
					"certificateAuthority": resource.NewObjectProperty(resource.PropertyMap{"data": s("Y2VydA==")}),
					"identities": resource.NewArrayProperty([]resource.PropertyValue{resource.NewObjectProperty(resource.PropertyMap{
						"oidcs": resource.NewArrayProperty([]resource.PropertyValue{resource.NewObjectProperty(resource.PropertyMap{"issuer": s(issuer)})})})}),
					"vpcConfig": resource.NewObjectProperty(resource.PropertyMap{"clusterSecurityGroupId": s(clusterSG)})}
			case "aws:rds/instance:Instance":
				return resource.PropertyMap{"address": s("db.internal"), "port": resource.NewNumberProperty(5432),
					"masterUserSecrets": resource.NewArrayProperty([]resource.PropertyValue{resource.NewObjectProperty(resource.PropertyMap{"secretArn": s(rdsSecret)})})}
			case "aws:ecr/repository:Repository":
				return resource.PropertyMap{"arn": arn, "repositoryUrl": s("123456789012.dkr.ecr.eu-west-1.amazonaws.com/" + in["name"].StringValue())}
			case "aws:elasticache/replicationGroup:ReplicationGroup":
				return resource.PropertyMap{"primaryEndpointAddress": s("cache.internal")}
			case "kubernetes:core/v1:Service":
				return resource.PropertyMap{"status": resource.NewObjectProperty(resource.PropertyMap{"loadBalancer": resource.NewObjectProperty(resource.PropertyMap{
					"ingress": resource.NewArrayProperty([]resource.PropertyValue{resource.NewObjectProperty(resource.PropertyMap{"hostname": s("lb-1.elb.eu-west-1.amazonaws.com")})})})})}
			}
			if strings.HasPrefix(typ, "aws:") {
				return resource.PropertyMap{"arn": arn, "name": s(name)}
			}
			return nil
		},
		MockCall: func(token string, args resource.PropertyMap) (resource.PropertyMap, error) {
			switch token {
			case "aws:index/getAvailabilityZones:getAvailabilityZones":
				return resource.NewPropertyMapFromMap(map[string]any{"names": []any{"eu-west-1a", "eu-west-1b", "eu-west-1c"}, "id": "eu-west-1"}), nil
			case "aws:index/getCallerIdentity:getCallerIdentity":
				return resource.NewPropertyMapFromMap(map[string]any{"arn": callerARN, "accountId": "123456789012", "userId": "AROA:s", "id": "123456789012"}), nil
			}
			return resource.PropertyMap{}, nil
		},
	}
}

func base(extra map[string]string) map[string]string {
	c := map[string]string{"liftoff:target": "aws", "aws:region": "eu-west-1"}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func run(t *testing.T, stack string, cfg map[string]string, secrets ...string) *testenv.Mocks {
	t.Helper()
	m := mocks()
	m.Run(t, "shortener", stack, cfg, stacks.Run, secrets...)
	return m
}

func str(t *testing.T, r testenv.Resource, path string) string {
	t.Helper()
	v, ok := testenv.Lookup(r.Inputs, path)
	if !ok {
		t.Fatalf("%s %s has no %s", r.Type, r.Name, path)
	}
	return testenv.Show(v)
}

// graphKeys are the properties the golden file records per type: what an
// EKS reviewer would check.
func graphKeys(typ string) []string {
	switch typ {
	case "aws:ec2/vpc:Vpc":
		return []string{"cidrBlock", "enableDnsHostnames"}
	case "aws:ec2/subnet:Subnet":
		return []string{"cidrBlock", "availabilityZone", "mapPublicIpOnLaunch", "tags"}
	case "aws:ec2/natGateway:NatGateway":
		return []string{"subnetId"}
	case "aws:eks/cluster:Cluster":
		return []string{"name", "version", "accessConfig", "encryptionConfig.resources", "enabledClusterLogTypes", "kubernetesNetworkConfig", "vpcConfig.endpointPublicAccess"}
	case "aws:eks/nodeGroup:NodeGroup":
		return []string{"capacityType", "instanceTypes", "amiType", "scalingConfig", "diskSize", "labels"}
	case "aws:eks/addon:Addon":
		return []string{"addonName", "addonVersion"}
	case "aws:eks/accessPolicyAssociation:AccessPolicyAssociation":
		return []string{"principalArn", "policyArn", "accessScope"}
	case "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
		return []string{"policyArn"}
	case "aws:ecr/repository:Repository":
		return []string{"name", "imageTagMutability", "imageScanningConfiguration", "forceDelete"}
	case "aws:rds/instance:Instance":
		return []string{"identifier", "engine", "engineVersion", "instanceClass", "storageEncrypted", "publiclyAccessible", "manageMasterUserPassword", "backupRetentionPeriod", "deletionProtection", "multiAz"}
	case "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
		return []string{"fromPort", "toPort", "referencedSecurityGroupId", "cidrIpv4"}
	case "aws:kms/key:Key":
		return []string{"enableKeyRotation"}
	case "aws:secretsmanager/secret:Secret":
		return []string{"name", "recoveryWindowInDays"}
	case "aws:cloudwatch/logGroup:LogGroup":
		return []string{"name", "retentionInDays"}
	case "kubernetes:helm.sh/v3:Release":
		return []string{"chart", "version", "namespace"}
	case "kubernetes:storage.k8s.io/v1:StorageClass":
		return []string{"provisioner", "parameters", "metadata.annotations"}
	case "pulumi:providers:aws":
		return []string{"region", "defaultTags"}
	}
	return nil
}

// TestGraph compares the whole resource graph with testdata/aws.golden: it
// changes only on purpose (go test ./stacks/aws -update).
func TestGraph(t *testing.T) {
	m := run(t, "dev", base(nil))
	got := m.Graph(graphKeys)
	path := filepath.Join("testdata", "aws.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("resource graph changed; if on purpose, run go test ./stacks/aws -update\n%s", diff(string(want), got))
	}
}

func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for _, l := range g {
		if !slices.Contains(w, l) {
			out = append(out, "+ "+l)
		}
	}
	for _, l := range w {
		if !slices.Contains(g, l) {
			out = append(out, "- "+l)
		}
	}
	return strings.Join(out, "\n")
}

func TestResourceCounts(t *testing.T) {
	m := run(t, "dev", base(nil))
	for typ, want := range map[string]int{
		"pulumi:providers:aws": 1, "pulumi:providers:kubernetes": 1,
		"aws:ec2/vpc:Vpc": 1, "aws:ec2/subnet:Subnet": 4, "aws:ec2/natGateway:NatGateway": 1, "aws:ec2/internetGateway:InternetGateway": 1,
		"aws:eks/cluster:Cluster": 1, "aws:eks/nodeGroup:NodeGroup": 1, "aws:eks/addon:Addon": 4,
		"aws:iam/openIdConnectProvider:OpenIdConnectProvider": 1, "aws:kms/key:Key": 1,
		"aws:ecr/repository:Repository": 1, "aws:rds/instance:Instance": 1, "aws:secretsmanager/secret:Secret": 1,
		"kubernetes:helm.sh/v3:Release":                     7, // external-secrets, traefik, kube-prometheus-stack, loki, tempo, otel collector and agent
		"aws:elasticache/replicationGroup:ReplicationGroup": 0,
	} {
		if got := len(m.OfType(typ)); got != want {
			t.Errorf("%s: %d, want %d", typ, got, want)
		}
	}
}

func TestNAT(t *testing.T) {
	for _, tc := range []struct {
		nat, azs       string
		gateways, priv int
		public         bool
	}{{"single", "3", 1, 3, false}, {"per-az", "3", 3, 3, false}, {"none", "2", 0, 0, true}} {
		m := run(t, "dev", base(map[string]string{"liftoff:nat": tc.nat, "liftoff:azCount": tc.azs}))
		if got := len(m.OfType("aws:ec2/natGateway:NatGateway")); got != tc.gateways {
			t.Errorf("nat %s: %d gateways, want %d", tc.nat, got, tc.gateways)
		}
		var private int
		for _, s := range m.OfType("aws:ec2/subnet:Subnet") {
			if strings.Contains(s.Name, "-private-") {
				private++
				if !strings.Contains(str(t, s, "tags"), "kubernetes.io/role/internal-elb:1") {
					t.Errorf("private subnet %s lacks the internal-elb tag", s.Name)
				}
			} else {
				if !strings.Contains(str(t, s, "tags"), "kubernetes.io/role/elb:1") || !strings.Contains(str(t, s, "tags"), "kubernetes.io/cluster/shortener-dev:shared") {
					t.Errorf("public subnet %s tags: %s", s.Name, str(t, s, "tags"))
				}
				if got := str(t, s, "mapPublicIpOnLaunch") == "true"; got != tc.public {
					t.Errorf("nat %s: public subnet maps public IPs = %v", tc.nat, got)
				}
			}
		}
		if private != tc.priv {
			t.Errorf("nat %s: %d private subnets, want %d", tc.nat, private, tc.priv)
		}
		ng := m.OfType("aws:eks/nodeGroup:NodeGroup")[0]
		if n := strings.Count(str(t, ng, "subnetIds"), ","); n+1 != max(tc.priv, 2) && tc.nat != "none" {
			t.Errorf("nat %s: node subnets %s", tc.nat, str(t, ng, "subnetIds"))
		}
	}
}

func TestSpotNodes(t *testing.T) {
	m := run(t, "dev", base(nil))
	ng := m.OfType("aws:eks/nodeGroup:NodeGroup")[0]
	if got := str(t, ng, "capacityType"); got != "SPOT" {
		t.Errorf("capacity %s", got)
	}
	types, _ := testenv.Lookup(ng.Inputs, "instanceTypes")
	if len(types.ArrayValue()) < 3 {
		t.Errorf("spot diversity: %s", testenv.Show(types))
	}
	if got := str(t, ng, "amiType"); got != "AL2023_x86_64_STANDARD" {
		t.Errorf("ami %s", got)
	}
	// Nodes wait for the VPC CNI and their policies; the CNI policy is the add-on's, not the nodes'.
	for _, a := range m.OfType("aws:iam/rolePolicyAttachment:RolePolicyAttachment") {
		if strings.Contains(a.Name, "-nodes-") && strings.Contains(str(t, a, "policyArn"), "CNI") {
			t.Errorf("node role carries %s; the VPC CNI has its own IRSA role", str(t, a, "policyArn"))
		}
	}

	m = run(t, "dev", base(map[string]string{"liftoff:nodeCapacity": "on-demand", "liftoff:nodeInstanceTypes": `["m7g.large"]`}))
	ng = m.OfType("aws:eks/nodeGroup:NodeGroup")[0]
	if got := str(t, ng, "capacityType") + " " + str(t, ng, "amiType"); got != "ON_DEMAND AL2023_ARM_64_STANDARD" {
		t.Errorf("on-demand graviton: %s", got)
	}
}

// TestTags: every AWS resource is created through the one provider whose
// default tags carry liftoff:project and liftoff:stack; what Kubernetes
// creates in AWS (load balancers, volumes) is tagged through annotations.
func TestTags(t *testing.T) {
	m := run(t, "pr-7", base(map[string]string{"liftoff:database": "in-cluster"}))
	prov := m.Get(t, "pulumi:providers:aws", "aws")
	tags := str(t, prov, "defaultTags")
	if !strings.Contains(tags, "liftoff:project:shortener") || !strings.Contains(tags, "liftoff:stack:pr-7") {
		t.Fatalf("default tags %s", tags)
	}
	n := 0
	for _, r := range m.Resources {
		if !r.Custom || !strings.HasPrefix(r.Type, "aws:") {
			continue
		}
		n++
		if !strings.Contains(r.Provider, "pulumi:providers:aws::aws::") {
			t.Errorf("%s %s is not created through the tagged provider (provider %q)", r.Type, r.Name, r.Provider)
		}
	}
	if n < 30 {
		t.Errorf("only %d aws resources", n)
	}
	sc := m.OfType("kubernetes:storage.k8s.io/v1:StorageClass")[0]
	if p := str(t, sc, "parameters"); !strings.Contains(p, "liftoff:stack=pr-7") || !strings.Contains(p, "encrypted:true") {
		t.Errorf("storage class parameters %s", p)
	}
	traefik := m.Get(t, "kubernetes:helm.sh/v3:Release", "ingress-traefik")
	if v := str(t, traefik, "values"); !strings.Contains(v, "liftoff:project=shortener,liftoff:stack=pr-7") {
		t.Errorf("load balancer tags not in traefik values: %s", v)
	}
}

func TestDatabase(t *testing.T) {
	m := run(t, "dev", base(nil))
	db := m.OfType("aws:rds/instance:Instance")[0]
	for path, want := range map[string]string{"publiclyAccessible": "false", "storageEncrypted": "true", "manageMasterUserPassword": "true",
		"deletionProtection": "false", "skipFinalSnapshot": "true", "backupRetentionPeriod": "7"} {
		if got := str(t, db, path); got != want {
			t.Errorf("rds %s = %s, want %s", path, got, want)
		}
	}
	if _, ok := db.Inputs["password"]; ok {
		t.Error("rds has a password input: it would live in Pulumi's state")
	}
	var rules []testenv.Resource
	for _, r := range m.OfType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
		if strings.Contains(str(t, r, "description"), "PostgreSQL") {
			rules = append(rules, r)
		}
	}
	if len(rules) != 1 {
		t.Fatalf("%d PostgreSQL ingress rules", len(rules))
	}
	if got := str(t, rules[0], "referencedSecurityGroupId"); got != clusterSG {
		t.Errorf("database reachable from %s, want the nodes' %s", got, clusterSG)
	}
	if _, ok := rules[0].Inputs["cidrIpv4"]; ok {
		t.Error("database ingress by CIDR")
	}
	// The subnet group holds only node (private) subnets.
	sg := m.OfType("aws:rds/subnetGroup:SubnetGroup")[0]
	if s := str(t, sg, "subnetIds"); strings.Contains(s, "public") {
		t.Errorf("rds subnets %s", s)
	}

	prod := run(t, "prod", base(nil))
	db = prod.OfType("aws:rds/instance:Instance")[0]
	for path, want := range map[string]string{"deletionProtection": "true", "multiAz": "true", "skipFinalSnapshot": "false", "finalSnapshotIdentifier": "shortener-prod-final"} {
		if got := str(t, db, path); got != want {
			t.Errorf("prod rds %s = %s, want %s", path, got, want)
		}
	}
	// DATABASE_URL is templated in the cluster from the RDS-managed secret.
	es := prod.Get(t, "kubernetes:external-secrets.io/v1:ExternalSecret", "shortener-prod-app")
	if spec := str(t, es, "spec"); !strings.Contains(spec, rdsSecret) || !strings.Contains(spec, "db_password | urlquery") {
		t.Errorf("external secret spec %s", spec)
	}
}

// TestIRSA: every role assumed through the cluster's OIDC provider pins both
// the service account (sub) and the audience (aud).
func TestIRSA(t *testing.T) {
	m := run(t, "dev", base(nil))
	want := map[string]string{
		"system:serviceaccount:kube-system:aws-node":              "vpc-cni",
		"system:serviceaccount:kube-system:ebs-csi-controller-sa": "ebs-csi",
		"system:serviceaccount:shortener:shortener-env-reader":    "app secrets",
	}
	host := strings.TrimPrefix(issuer, "https://")
	for _, r := range m.OfType("aws:iam/role:Role") {
		var doc struct {
			Statement []struct {
				Principal map[string]string
				Action    string
				Condition map[string]map[string]string
			}
		}
		if err := json.Unmarshal([]byte(str(t, r, "assumeRolePolicy")), &doc); err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		st := doc.Statement[0]
		if st.Principal["Federated"] == "" {
			continue
		}
		cond := st.Condition["StringEquals"]
		if cond[host+":aud"] != "sts.amazonaws.com" || len(cond) != 2 || st.Action != "sts:AssumeRoleWithWebIdentity" {
			t.Errorf("%s trust: %+v", r.Name, st)
		}
		if _, ok := want[cond[host+":sub"]]; !ok {
			t.Errorf("%s trusts unexpected subject %q", r.Name, cond[host+":sub"])
		}
		delete(want, cond[host+":sub"])
	}
	if len(want) > 0 {
		t.Errorf("no IRSA role for %v", want)
	}
	// The reader role reads exactly the app's secret and the RDS-managed one.
	pol := m.Get(t, "aws:iam/rolePolicy:RolePolicy", "shortener-dev-app-reader")
	var doc struct {
		Statement []struct{ Action, Resource []string }
	}
	if err := json.Unmarshal([]byte(str(t, pol, "policy")), &doc); err != nil {
		t.Fatal(err)
	}
	if res := doc.Statement[0].Resource; len(res) != 2 || !slices.Contains(res, rdsSecret) || slices.Contains(res, "*") {
		t.Errorf("reader policy resources %v", res)
	}
}

func TestClusterSecurity(t *testing.T) {
	m := run(t, "dev", base(map[string]string{"liftoff:deployers": `["arn:aws:iam::123456789012:role/ci"]`}))
	c := m.OfType("aws:eks/cluster:Cluster")[0]
	if got := str(t, c, "accessConfig"); got != "{authenticationMode:API,bootstrapClusterCreatorAdminPermissions:false}" {
		t.Errorf("access config %s", got)
	}
	if got := str(t, c, "encryptionConfig"); !strings.Contains(got, "keyArn:arn:aws:aws-kms/key-Key") || !strings.Contains(got, "resources:[secrets]") {
		t.Errorf("encryption %s", got)
	}
	if got := str(t, m.OfType("aws:kms/key:Key")[0], "enableKeyRotation"); got != "true" {
		t.Errorf("key rotation %s", got)
	}
	var principals []string
	for _, a := range m.OfType("aws:eks/accessEntry:AccessEntry") {
		principals = append(principals, str(t, a, "principalArn"))
	}
	slices.Sort(principals)
	if want := []string{"arn:aws:iam::123456789012:role/Founder", "arn:aws:iam::123456789012:role/ci"}; !slices.Equal(principals, want) {
		t.Errorf("access entries %v, want %v", principals, want)
	}
	ecr := m.OfType("aws:ecr/repository:Repository")[0]
	for path, want := range map[string]string{"forceDelete": "true", "imageTagMutability": "IMMUTABLE", "imageScanningConfiguration": "{scanOnPush:true}"} {
		if got := str(t, ecr, path); got != want {
			t.Errorf("ecr %s = %s", path, got)
		}
	}
	// The Kubernetes provider authenticates through liftoff's token command: no stored token.
	kube := m.Get(t, "pulumi:providers:kubernetes", "eks")
	if kc := str(t, kube, "kubeconfig"); !strings.Contains(kc, "eks-token") || strings.Contains(kc, "token:") {
		t.Errorf("kubeconfig %s", kc)
	}
}

// TestNoPlainSecrets: a configured secret never lands in a resource input in
// plain text, and the app's secret values are marked secret.
func TestNoPlainSecrets(t *testing.T) {
	m := run(t, "dev", base(map[string]string{"liftoff:database": "external", "liftoff:databaseUrl": plainDB, "liftoff:cache": "elasticache"}), "liftoff:databaseUrl")
	for _, r := range m.Resources {
		if strings.Contains(testenv.Show(resource.NewObjectProperty(r.Inputs)), "pw-in-plain") {
			t.Errorf("%s %s holds the database password in plain text", r.Type, r.Name)
		}
	}
	v := m.OfType("aws:secretsmanager/secretVersion:SecretVersion")[0]
	if s, _ := testenv.Lookup(v.Inputs, "secretString"); !s.ContainsSecrets() {
		t.Error("secret version is not a secret")
	}
	if len(m.OfType("aws:rds/instance:Instance")) != 0 || len(m.OfType("aws:elasticache/replicationGroup:ReplicationGroup")) != 1 {
		t.Errorf("resources: %v", m.Names())
	}
	rg := m.OfType("aws:elasticache/replicationGroup:ReplicationGroup")[0]
	if str(t, rg, "transitEncryptionEnabled") != "true" || str(t, rg, "atRestEncryptionEnabled") != "true" {
		t.Error("elasticache not encrypted")
	}
}

func TestBaseName(t *testing.T) {
	if got := awsstack.BaseName("shortener", "prod"); got != "shortener-prod" {
		t.Errorf("got %s", got)
	}
	long := awsstack.BaseName(strings.Repeat("a", 40), strings.Repeat("b", 30))
	if len(long) > 38 || long != awsstack.BaseName(strings.Repeat("a", 40), strings.Repeat("b", 30)) {
		t.Errorf("long name %q (%d)", long, len(long))
	}
	if awsstack.BaseName(strings.Repeat("a", 40), "x1") == awsstack.BaseName(strings.Repeat("a", 40), "x2") {
		t.Error("different stacks share a base name")
	}
}

func TestPrincipalARN(t *testing.T) {
	for in, want := range map[string]string{
		callerARN:                              "arn:aws:iam::123456789012:role/Founder",
		"arn:aws:iam::123456789012:user/alice": "arn:aws:iam::123456789012:user/alice",
		"arn:aws-cn:sts::123456789012:assumed-role/R/s": "arn:aws-cn:iam::123456789012:role/R",
	} {
		if got := awsstack.PrincipalARN(in); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}

// TestAddonPins: every EKS version the config accepts has pinned add-ons.
func TestAddonPins(t *testing.T) {
	accepted := 0
	for minor := 28; minor <= 40; minor++ {
		v := fmt.Sprintf("1.%d", minor)
		_, err := config.Parse("dev", config.Values{"liftoff:target": config.Plain("aws"), "aws:region": config.Plain("eu-west-1"), "liftoff:eksVersion": config.Plain(v)})
		if err != nil {
			continue
		}
		accepted++
		if _, ok := cluster.AddonVersions[v]; !ok {
			t.Errorf("config accepts EKS %s but no add-on versions are pinned for it", v)
		}
	}
	if accepted == 0 {
		t.Fatal("config accepts no EKS version")
	}
}

// TestNetworkPolicyEnforced: on EKS the VPC CNI enforces NetworkPolicies
// only when asked; without it every policy liftoff declares is void.
func TestNetworkPolicyEnforced(t *testing.T) {
	m := run(t, "dev", base(nil))
	for _, r := range m.OfType("aws:eks/addon:Addon") {
		if name, _ := testenv.Lookup(r.Inputs, "addonName"); name.StringValue() == "vpc-cni" {
			if v, _ := testenv.Lookup(r.Inputs, "configurationValues"); !strings.Contains(v.StringValue(), `"enableNetworkPolicy":"true"`) {
				t.Errorf("vpc-cni configuration %q", v.StringValue())
			}
			return
		}
	}
	t.Fatal("no vpc-cni add-on")
}

// TestMetricsServer: EKS has no metrics API of its own, so a stack that
// autoscales gets metrics-server with its cluster (and none with
// metricsServer off, or without autoscaling).
func TestMetricsServer(t *testing.T) {
	for _, c := range []struct {
		set  map[string]string
		want int
	}{
		{nil, 0},
		{map[string]string{"liftoff:autoscale": "2-6"}, 1},
		{map[string]string{"liftoff:autoscale": "2-6", "liftoff:metricsServer": "off"}, 0},
	} {
		m := run(t, "dev", base(c.set))
		if got := len(m.OfType("liftoff:metrics:MetricsServer")); got != c.want {
			t.Errorf("%v: %d metrics-servers, want %d", c.set, got, c.want)
		}
	}
}
