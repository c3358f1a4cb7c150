package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/kexec"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// The scheduled backups' volume claim (components/backup declares it),
// and where it is mounted, in the backup job and in the tools pod.
const (
	ClaimName  = "backups"
	VolumePath = "/backups"
)

// Labels on the tools pods, so that the data services' network policies
// can admit them (and only them) beside the app.
const (
	LabelComponent = "liftoff.dev/component"
	ComponentTools = "db-tools"
)

// Place is where a database's backups are taken and restored: the
// namespace a tools pod runs in, the image it runs (one with pg_dump,
// pg_restore and psql of the server's major version: the in-cluster
// PostgreSQL's image), and the Secret key that holds the database's URL.
type Place struct {
	Kube      kubernetes.Interface
	Rest      *rest.Config
	Namespace string
	App       string
	Image     string
	// URLSecret and URLKey name the Secret key with the database's URL
	// (the app's env Secret, DATABASE_URL); empty for a pod that only
	// needs its own scratch server (a restore drill).
	URLSecret, URLKey string
	// PullSecrets are the image pull Secrets of the namespace.
	PullSecrets []string
	// Claim, when set, is the scheduled backups' volume claim, mounted at
	// VolumePath.
	Claim string
	// ReadyTimeout bounds the wait for the pod (default 2m).
	ReadyTimeout time.Duration
}

// Tools is a running tools pod: the database image with a scratch
// PostgreSQL of its own (for restore drills), DATABASE_URL set from the
// place's Secret.
type Tools struct {
	place Place
	name  string
}

// StartTools starts a tools pod in the place's namespace and waits until its
// scratch server answers.
func StartTools(ctx context.Context, p Place) (*Tools, error) {
	if p.ReadyTimeout == 0 {
		p.ReadyTimeout = 2 * time.Minute
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		return nil, err
	}
	name := "liftoff-db-" + hex.EncodeToString(suffix)
	pw := make([]byte, 16)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	env := []corev1.EnvVar{
		{Name: "POSTGRES_USER", Value: "scratch"}, {Name: "POSTGRES_DB", Value: "scratch"},
		{Name: "POSTGRES_PASSWORD", Value: hex.EncodeToString(pw)},
		{Name: "PGDATA", Value: "/scratch/pgdata"},
	}
	if p.URLSecret != "" {
		env = append(env, corev1.EnvVar{Name: "DATABASE_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: p.URLSecret}, Key: p.URLKey}}})
	}
	var pulls []corev1.LocalObjectReference
	for _, s := range p.PullSecrets {
		pulls = append(pulls, corev1.LocalObjectReference{Name: s})
	}
	mounts := []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	volumes := []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	if p.Claim != "" {
		mounts = append(mounts, corev1.VolumeMount{Name: "backups", MountPath: VolumePath})
		volumes = append(volumes, corev1.Volume{Name: "backups", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: p.Claim}}})
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Labels: map[string]string{
			outputs.LabelManagedBy: "liftoff", LabelComponent: ComponentTools, outputs.LabelName: p.App,
			outputs.ClientLabel("postgres"): "true"}},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken:  ptr.To(false),
			ImagePullSecrets:              pulls,
			SecurityContext:               &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](999), RunAsGroup: ptr.To[int64](999), FSGroup: ptr.To[int64](999)},
			Containers: []corev1.Container{{
				Name: "postgres", Image: p.Image, Env: env,
				VolumeMounts: mounts,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
					Command: []string{"pg_isready", "-U", "scratch", "-d", "scratch"}}}, PeriodSeconds: 1},
			}},
			Volumes: volumes,
		},
	}
	if _, err := p.Kube.CoreV1().Pods(p.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("start a database tools pod in %s: %w", p.Namespace, err)
	}
	t := &Tools{place: p, name: name}
	if err := t.waitReady(ctx); err != nil {
		t.Close(ctx)
		return nil, err
	}
	return t, nil
}

// Name is the pod's name.
func (t *Tools) Name() string { return t.name }

func (t *Tools) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(t.place.ReadyTimeout)
	for {
		p, err := t.place.Kube.CoreV1().Pods(t.place.Namespace).Get(ctx, t.name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("database tools pod %s: %w", t.name, err)
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return fmt.Errorf("database tools pod %s stopped (%s): image %s must run PostgreSQL as the official image does", t.name, p.Status.Phase, t.place.Image)
		}
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff" || w.Reason == "InvalidImageName" || w.Reason == "CreateContainerConfigError") {
				return fmt.Errorf("database tools pod %s: %s: %s", t.name, w.Reason, w.Message)
			}
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("database tools pod %s not ready after %s (phase %s)", t.name, t.place.ReadyTimeout, p.Status.Phase)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Close deletes the pod, also when ctx has ended. One left behind (the
// API server gone) holds nothing: its scratch server is an emptyDir.
func (t *Tools) Close(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = t.place.Kube.CoreV1().Pods(t.place.Namespace).Delete(cctx, t.name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
}

// Shell runs script with sh -c in the pod (so it sees $DATABASE_URL),
// streaming stdin and stdout; a non-zero exit is an error carrying the
// end of its stderr.
func (t *Tools) Shell(ctx context.Context, script string, stdin io.Reader, stdout io.Writer) error {
	var stderr tail
	code, err := kexec.Run(ctx, t.place.Kube, t.place.Rest, kexec.Options{Namespace: t.place.Namespace, Pod: t.name, Container: "postgres",
		Command: []string{"sh", "-c", script}, Stdin: stdin, Stdout: stdout, Stderr: &stderr})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exit code %d: %s", code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Upload copies size bytes of r into the file at path in the pod. Two
// races of the exec streams are kept out (each seen here on 1 in 30 to 1
// in 4 short uploads, over WebSockets and SPDY alike, as an empty file):
// a closed stdin can reach the command before the bytes sent ahead of it,
// so stdin is never closed and the command reads exactly size bytes; and
// an exec whose stdout closes early can end before its command read them,
// so the script holds stdout open and reports the size it wrote.
func (t *Tools) Upload(ctx context.Context, r io.Reader, size int64, path string) error {
	ended := make(chan struct{})
	defer close(ended)
	var out bytes.Buffer
	script := fmt.Sprintf(`head -c %d > %s; echo "uploaded $(wc -c < %s)"`, size, path, path)
	if err := t.Shell(ctx, script, io.MultiReader(io.LimitReader(r, size), &blocked{ended}), &out); err != nil {
		return err
	}
	if got := strings.TrimSpace(out.String()); got != fmt.Sprintf("uploaded %d", size) {
		return fmt.Errorf("upload to %s: %q, want %d bytes", path, got, size)
	}
	return nil
}

// blocked reads nothing until ended is closed: a stdin that stays open.
type blocked struct{ ended chan struct{} }

func (b *blocked) Read([]byte) (int, error) {
	<-b.ended
	return 0, io.EOF
}

// tail keeps the last 4 KiB written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(bytes.ToValidUTF8(t.b, nil)) }
