// Package eksauth mints EKS authentication tokens in Go, as
// aws-iam-authenticator does: a presigned STS GetCallerIdentity URL bound to
// the cluster's name. Presigning is local: no request leaves the machine
// until the API server checks the token with STS.
package eksauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Prefix starts every EKS token.
const Prefix = "k8s-aws-v1."

// Lifetime is how long EKS accepts a token (STS presigned URLs are checked
// for 15 minutes); callers refresh a minute early.
const Lifetime = 14 * time.Minute

// Token is a bearer token for one cluster.
type Token struct {
	Value   string
	Expires time.Time
}

// Mint presigns GetCallerIdentity with the cluster name in the signed
// x-k8s-aws-id header, so the token is valid for that cluster only.
func Mint(ctx context.Context, cfg aws.Config, cluster string, now time.Time) (Token, error) {
	if cluster == "" {
		return Token{}, fmt.Errorf("eks token: cluster name is required")
	}
	if cfg.Region == "" {
		return Token{}, fmt.Errorf("eks token: region is required (set --region or AWS_REGION)")
	}
	presigner := sts.NewPresignClient(sts.NewFromConfig(cfg))
	req, err := presigner.PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, func(o *sts.PresignOptions) {
		o.ClientOptions = append(o.ClientOptions, func(o *sts.Options) {
			o.APIOptions = append(o.APIOptions,
				smithyhttp.AddHeaderValue("x-k8s-aws-id", cluster),
				smithyhttp.AddHeaderValue("X-Amz-Expires", "60"))
		})
	})
	if err != nil {
		return Token{}, fmt.Errorf("eks token for %s: presign sts:GetCallerIdentity: %w", cluster, err)
	}
	return Token{Value: Prefix + base64.RawURLEncoding.EncodeToString([]byte(req.URL)), Expires: now.Add(Lifetime)}, nil
}

// ExecCredential renders the token as client-go's exec plugin output.
func (t Token) ExecCredential() ([]byte, error) {
	return json.Marshal(map[string]any{
		"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
		"status": map[string]any{"token": t.Value, "expirationTimestamp": t.Expires.UTC().Format(time.RFC3339)},
	})
}
