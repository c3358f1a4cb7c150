package eksauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

func TestMint(t *testing.T) {
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	tok, err := Mint(context.Background(), cfg, "shortener-prod", now)
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(tok.Value, Prefix)
	if !ok {
		t.Fatalf("token %q lacks %s", tok.Value, Prefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Host != "sts.eu-west-1.amazonaws.com" || q.Get("Action") != "GetCallerIdentity" || q.Get("X-Amz-Expires") != "60" {
		t.Errorf("presigned URL %s", u)
	}
	if h := q.Get("X-Amz-SignedHeaders"); !strings.Contains(h, "x-k8s-aws-id") {
		t.Errorf("cluster header not signed: %s", h)
	}
	if !strings.HasPrefix(q.Get("X-Amz-Credential"), "AKIDEXAMPLE/") || q.Get("X-Amz-Signature") == "" {
		t.Errorf("not signed with the caller's credentials: %s", u)
	}
	if !tok.Expires.Equal(now.Add(Lifetime)) {
		t.Errorf("expires %v", tok.Expires)
	}
	// A token for another cluster differs: the name is part of the signature.
	other, _ := Mint(context.Background(), cfg, "shortener-dev", now)
	if other.Value == tok.Value {
		t.Error("tokens of two clusters are equal")
	}
	out, err := tok.ExecCredential()
	if err != nil {
		t.Fatal(err)
	}
	var cred struct {
		Kind   string
		Status struct{ Token, ExpirationTimestamp string }
	}
	if err := json.Unmarshal(out, &cred); err != nil || cred.Kind != "ExecCredential" || cred.Status.Token != tok.Value || cred.Status.ExpirationTimestamp != "2026-11-29T12:14:00Z" {
		t.Errorf("exec credential %s (%v)", out, err)
	}
}

func TestMintErrors(t *testing.T) {
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("A", "B", "")}
	if _, err := Mint(context.Background(), cfg, "", time.Now()); err == nil {
		t.Error("no cluster name accepted")
	}
	cfg.Region = ""
	if _, err := Mint(context.Background(), cfg, "c", time.Now()); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("err = %v", err)
	}
}
