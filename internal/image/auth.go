package image

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
)

// ecrHost matches ECR registry hosts: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn].
var ecrHost = regexp.MustCompile(`^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// ECRTokens is the one ECR call liftoff needs; *ecr.Client implements it.
type ECRTokens interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// ECRKeychain logs in to ECR registries with the AWS SDK (no aws CLI, no
// docker login): the standard credential chain, region from the host.
type ECRKeychain struct {
	// Client returns the ECR client for a region; nil uses the AWS SDK's defaults.
	Client func(ctx context.Context, region string) (ECRTokens, error)

	mu     sync.Mutex
	tokens map[string]cachedToken
}

type cachedToken struct {
	auth    authn.AuthConfig
	expires time.Time
}

// Resolve implements authn.Keychain for callers without a context; the
// registry client calls ResolveContext.
func (k *ECRKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain: an ECR registry's
// token, fetched with ctx and cached; other registries resolve to anonymous.
func (k *ECRKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	m := ecrHost.FindStringSubmatch(r.RegistryStr())
	if m == nil {
		return authn.Anonymous, nil
	}
	region := m[3]
	k.mu.Lock()
	defer k.mu.Unlock()
	if t, ok := k.tokens[region]; ok && time.Until(t.expires) > 5*time.Minute {
		return authn.FromConfig(t.auth), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	newClient := k.Client
	if newClient == nil {
		newClient = defaultECR
	}
	c, err := newClient(ctx, region)
	if err != nil {
		return nil, fmt.Errorf("ECR credentials for %s: %w", r.RegistryStr(), err)
	}
	out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, fmt.Errorf("ECR GetAuthorizationToken in %s: %w", region, err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return nil, fmt.Errorf("ECR GetAuthorizationToken in %s returned no token", region)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("ECR token: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, fmt.Errorf("ECR token is not user:password")
	}
	exp := time.Now().Add(11 * time.Hour)
	if out.AuthorizationData[0].ExpiresAt != nil {
		exp = *out.AuthorizationData[0].ExpiresAt
	}
	if k.tokens == nil {
		k.tokens = map[string]cachedToken{}
	}
	t := cachedToken{auth: authn.AuthConfig{Username: user, Password: pass}, expires: exp}
	k.tokens[region] = t
	return authn.FromConfig(t.auth), nil
}

func defaultECR(ctx context.Context, region string) (ECRTokens, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, err
	}
	return ecr.NewFromConfig(cfg), nil
}

// BasicKeychain gives fixed credentials to one registry host (the homelab
// registry), from LIFTOFF_REGISTRY_USERNAME and LIFTOFF_REGISTRY_PASSWORD.
type BasicKeychain struct {
	Host, Username, Password string
}

// Resolve implements authn.Keychain.
func (b BasicKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if b.Username == "" || (b.Host != "" && r.RegistryStr() != b.Host) {
		return authn.Anonymous, nil
	}
	return &authn.Basic{Username: b.Username, Password: b.Password}, nil
}

// Keychain is liftoff's credential order: explicit basic credentials, ECR
// through the AWS SDK, then the Docker config file and its credential helpers.
func Keychain(getenv func(string) string, host string) authn.Keychain {
	return authn.NewMultiKeychain(
		BasicKeychain{Host: host, Username: getenv("LIFTOFF_REGISTRY_USERNAME"), Password: getenv("LIFTOFF_REGISTRY_PASSWORD")},
		&ECRKeychain{},
		authn.DefaultKeychain,
	)
}
