// Package secrets delivers the app's secrets on aws: values kept in AWS
// Secrets Manager, synced into the Kubernetes Secret the chart reads by the
// External Secrets Operator, through an IRSA role that can read exactly
// those secrets and nothing else.
package secrets

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/secretsmanager"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/irsa"
	"github.com/liftoff-dev/liftoff/components/upstream"
)

// Operator is the pinned External Secrets Operator chart.
var Operator = upstream.Chart{Name: "external-secrets", Repo: "https://charts.external-secrets.io", Version: "0.19.2"}

// Database is an RDS database whose credentials RDS keeps in Secrets Manager.
type Database struct {
	SecretARN pulumi.StringOutput // {"username": ..., "password": ...}
	Address   pulumi.StringOutput
	Port      pulumi.IntOutput
	Name      string
}

// Args configure the component.
type Args struct {
	// SecretName is the Secrets Manager name of the app's own secret.
	SecretName string
	// ChartMirror, when set, is where the operator's chart comes from
	// instead of its public repository (upstream.Chart.Source).
	ChartMirror string
	Region      string
	Namespace   string
	// KubeSecret is the Kubernetes Secret the chart reads (envFrom).
	KubeSecret string
	OIDC       irsa.OIDC
	// Values are stored in the app's secret, key by key (CACHE_URL, an external DATABASE_URL).
	Values pulumi.StringMap
	// Database, when set, makes DATABASE_URL from the RDS-managed credentials.
	Database *Database
	// RecoveryDays is how long a deleted secret can be restored (0 deletes at once, for previews).
	RecoveryDays int
	// Operator, when false, assumes ESO is already installed (a preview on a parent's cluster).
	Operator bool
	// AWSOpts and KubeOpts carry each provider.
	AWSOpts, KubeOpts []pulumi.ResourceOption
}

// Secrets is the app's secret delivery.
type Secrets struct {
	pulumi.ResourceState
	SecretARN pulumi.StringOutput `pulumi:"secretArn"`
	RoleARN   pulumi.StringOutput `pulumi:"roleArn"`
	// Synced is the ExternalSecret; the app's deploy waits for it.
	Synced pulumi.Resource
}

// ServiceAccount is the service account whose IRSA role reads the secrets.
func ServiceAccount(target string) string { return target + "-reader" }

// ReadPolicy allows reading exactly the given secrets.
func ReadPolicy(arns ...string) (string, error) {
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Action": []string{"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}, "Resource": arns}}})
	return string(b), err
}

// New declares the secret, the role, the operator and the sync.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Secrets, error) {
	if args == nil || args.SecretName == "" || args.Namespace == "" || args.KubeSecret == "" || args.Region == "" {
		return nil, fmt.Errorf("secrets: secret name, region, namespace and target are required")
	}
	s := &Secrets{}
	if err := ctx.RegisterComponentResource("liftoff:secrets:Secrets", name, s, opts...); err != nil {
		return nil, err
	}
	awsOpts := append([]pulumi.ResourceOption{pulumi.Parent(s)}, args.AWSOpts...)
	kubeOpts := append([]pulumi.ResourceOption{pulumi.Parent(s)}, args.KubeOpts...)

	secret, err := secretsmanager.NewSecret(ctx, name, &secretsmanager.SecretArgs{Name: pulumi.String(args.SecretName),
		Description: pulumi.String("environment of the app, synced to Secret " + args.Namespace + "/" + args.KubeSecret), RecoveryWindowInDays: pulumi.Int(args.RecoveryDays)}, awsOpts...)
	if err != nil {
		return nil, err
	}
	doc := args.Values.ToStringMapOutput().ApplyT(func(m map[string]string) (string, error) {
		b, err := json.Marshal(m)
		return string(b), err
	}).(pulumi.StringOutput)
	if _, err := secretsmanager.NewSecretVersion(ctx, name, &secretsmanager.SecretVersionArgs{SecretId: secret.ID(),
		SecretString: pulumi.ToSecret(doc).(pulumi.StringOutput)}, awsOpts...); err != nil {
		return nil, err
	}
	arns := pulumi.StringArray{secret.Arn}
	if args.Database != nil {
		arns = append(arns, args.Database.SecretARN)
	}
	policy := arns.ToStringArrayOutput().ApplyT(func(a []string) (string, error) { return ReadPolicy(a...) }).(pulumi.StringOutput)
	sa := ServiceAccount(args.KubeSecret)
	role, err := irsa.NewRole(ctx, name+"-reader", &irsa.RoleArgs{OIDC: args.OIDC, Namespace: args.Namespace, ServiceAccount: sa, Policy: policy}, awsOpts...)
	if err != nil {
		return nil, err
	}

	var deps []pulumi.Resource
	if args.Operator {
		// The operator's own role has no AWS permissions: each SecretStore
		// authenticates as its namespace's service account (JWT), so one
		// app can never read another's secrets.
		chart, repo := Operator.Release(args.ChartMirror)
		op, err := helmv3.NewRelease(ctx, name+"-operator", &helmv3.ReleaseArgs{
			Name: pulumi.String(Operator.Name), Chart: chart, Version: pulumi.String(Operator.Version),
			RepositoryOpts: repo,
			Namespace:      pulumi.String("external-secrets"), CreateNamespace: pulumi.Bool(true),
			Values:  pulumi.Map{"installCRDs": pulumi.Bool(true), "resources": pulumi.Map{"requests": pulumi.Map{"cpu": pulumi.String("20m"), "memory": pulumi.String("64Mi")}}},
			Timeout: pulumi.Int(600), MaxHistory: pulumi.Int(5),
		}, kubeOpts...)
		if err != nil {
			return nil, err
		}
		deps = append(deps, op)
	}
	account, err := corev1.NewServiceAccount(ctx, name+"-reader", &corev1.ServiceAccountArgs{Metadata: &metav1.ObjectMetaArgs{
		Name: pulumi.String(sa), Namespace: pulumi.String(args.Namespace),
		Annotations: pulumi.StringMap{"eks.amazonaws.com/role-arn": role.Arn}}}, kubeOpts...)
	if err != nil {
		return nil, err
	}
	deps = append(deps, account)
	store, err := apiextensions.NewCustomResource(ctx, name+"-store", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("external-secrets.io/v1"), Kind: pulumi.String("SecretStore"),
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(args.KubeSecret), Namespace: pulumi.String(args.Namespace)},
		OtherFields: map[string]any{"spec": pulumi.Map{"provider": pulumi.Map{"aws": pulumi.Map{
			"service": pulumi.String("SecretsManager"), "region": pulumi.String(args.Region),
			"auth": pulumi.Map{"jwt": pulumi.Map{"serviceAccountRef": pulumi.Map{"name": pulumi.String(sa)}}},
		}}}},
	}, append(kubeOpts, pulumi.DependsOn(deps))...)
	if err != nil {
		return nil, err
	}
	spec := pulumi.Map{
		"refreshInterval": pulumi.String("1h"),
		"secretStoreRef":  pulumi.Map{"name": pulumi.String(args.KubeSecret), "kind": pulumi.String("SecretStore")},
		"dataFrom":        pulumi.Array{pulumi.Map{"extract": pulumi.Map{"key": pulumi.String(args.SecretName)}}},
		"target":          pulumi.Map{"name": pulumi.String(args.KubeSecret), "creationPolicy": pulumi.String("Owner")},
	}
	if db := args.Database; db != nil {
		// The password never passes through Pulumi: the operator reads it
		// from the RDS-managed secret and templates the URL in the cluster.
		spec["data"] = pulumi.Array{
			pulumi.Map{"secretKey": pulumi.String("db_username"), "remoteRef": pulumi.Map{"key": db.SecretARN, "property": pulumi.String("username")}},
			pulumi.Map{"secretKey": pulumi.String("db_password"), "remoteRef": pulumi.Map{"key": db.SecretARN, "property": pulumi.String("password")}},
		}
		// The template replaces the fetched keys, so the raw credentials never become env vars.
		data := pulumi.Map{"DATABASE_URL": pulumi.Sprintf("postgres://{{ .db_username | urlquery }}:{{ .db_password | urlquery }}@%s:%d/%s?sslmode=require", db.Address, db.Port, db.Name)}
		for k := range args.Values {
			data[k] = pulumi.String("{{ ." + k + " }}")
		}
		spec["target"] = pulumi.Map{"name": pulumi.String(args.KubeSecret), "creationPolicy": pulumi.String("Owner"),
			"template": pulumi.Map{"engineVersion": pulumi.String("v2"), "data": data}}
	}
	synced, err := apiextensions.NewCustomResource(ctx, name, &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("external-secrets.io/v1"), Kind: pulumi.String("ExternalSecret"),
		Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String(args.KubeSecret), Namespace: pulumi.String(args.Namespace)},
		OtherFields: map[string]any{"spec": spec},
	}, append(kubeOpts, pulumi.DependsOn([]pulumi.Resource{store}))...)
	if err != nil {
		return nil, err
	}
	s.SecretARN, s.RoleARN, s.Synced = secret.Arn, role.Arn, synced
	return s, ctx.RegisterResourceOutputs(s, pulumi.Map{"secretArn": s.SecretARN, "roleArn": s.RoleARN})
}
