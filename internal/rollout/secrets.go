package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// The app's own secrets (liftoff secrets set) reach its pods as an
// immutable Secret named by a hash of its content, <app>-secrets-<version>,
// read through envFrom. A change is a new Secret and a blue-green deploy of
// the live image: the running slot keeps the Secret it started with, so a
// rollback returns to the old values too.
const (
	AnnSecretsVersion = "liftoff.dev/secrets-version"
	LabelComponent    = "app.kubernetes.io/component"
	componentSecrets  = "app-secrets"
)

// Reserved are environment variables liftoff or the chart sets itself, or
// that only the operator's settings may set: an app secret cannot set them
// (the chart's env would win over envFrom, or a secret could open a
// listener: PPROF_ADDR, METRICS_ADDR).
var Reserved = []string{"DATABASE_URL", "CACHE_URL", "LISTEN_ADDR", "METRICS_ADDR", "PPROF_ADDR", "SLOT", "LOG_LEVEL", "SHUTDOWN_DELAY", "GOMEMLIMIT",
	"OTEL_EXPORTER_OTLP_ENDPOINT", "MIGRATE_ON_START", "RATE_LIMIT_WRITES", "RATE_LIMIT_REDIRECTS", "TRUSTED_PROXIES", "DRAIN_TIMEOUT", "FLUSH_TIMEOUT"}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidSecretKey says why key cannot be an app secret, if it cannot.
func ValidSecretKey(key string) error { return validEnvKey("secret key", key) }

// validEnvKey says why key cannot be a variable of the app's environment
// (what names it: a secret key, --env), if it cannot.
func validEnvKey(what, key string) error {
	if !envName.MatchString(key) {
		return failure.Newf(failure.Config, "use letters, digits and underscores, not starting with a digit (e.g. STRIPE_KEY)",
			"%s %q is not a valid environment variable name", what, key)
	}
	if slices.Contains(Reserved, key) {
		return failure.Newf(failure.Config, "pick another name; liftoff sets "+key+" itself (database and cache URLs come from the stack)",
			"%s %s is reserved by liftoff", what, key)
	}
	return nil
}

// SecretsVersion is the content hash that names a set of app secrets ("" for none).
func SecretsVersion(data map[string]string) string {
	if len(data) == 0 {
		return ""
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s=%d:%s\n", len(k), k, len(data[k]), data[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:10]
}

// SecretsName is the Secret holding one version of the app's secrets.
func (e *Client) SecretsName(version string) string { return e.Ref.App + "-secrets-" + version }

// ensureAppSecrets writes one version of the app's secrets, once: the
// Secret is immutable, so a version never changes under a running slot.
func (e *Client) ensureAppSecrets(ctx context.Context, data map[string]string) (string, error) {
	version := SecretsVersion(data)
	if version == "" {
		return "", nil
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: e.SecretsName(version), Namespace: e.Ref.Namespace,
			Labels:      map[string]string{LabelApp: e.Ref.App, LabelManagedBy: "liftoff", LabelComponent: componentSecrets},
			Annotations: map[string]string{AnnSecretsVersion: version}},
		Immutable:  ptr.To(true),
		StringData: data,
	}
	_, err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).Create(ctx, s, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create secret %s: %w", s.Name, err)
	}
	return version, nil
}

// slotSecrets is the version of the app's secrets a slot's pods run with.
func (e *Client) slotSecrets(ctx context.Context, slot string) (string, error) {
	d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(slot), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return d.Spec.Template.Annotations[AnnSecretsVersion], nil
}

// pruneAppSecrets deletes the versions of the app's secrets no slot uses.
func (e *Client) pruneAppSecrets(ctx context.Context) error {
	keep := map[string]bool{}
	for _, slot := range []string{Blue, Green} {
		v, err := e.slotSecrets(ctx, slot)
		if err != nil {
			return err
		}
		keep[v] = true
	}
	list, err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelApp + "=" + e.Ref.App + "," + LabelComponent + "=" + componentSecrets})
	if err != nil {
		return err
	}
	for _, s := range list.Items {
		if keep[s.Annotations[AnnSecretsVersion]] {
			continue
		}
		if err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}
