package launch

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/kexec"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestLoginsWaitForPostgres runs the PostgreSQL stand-in on the real node
// as the in-cluster database's pod, with its server held back until the
// test lets it start: liftoff reaches a pod whose container is not running
// yet, then a container without a server (psql's exit 2, as a server still
// running initdb, or the official image's restart between its temporary
// server and the real one, gives). Both are tried again; ensureLogins
// waits for the server, says so once, and makes the app's login,
// idempotently.
func TestLoginsWaitForPostgres(t *testing.T) {
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true})
	ctx := context.Background()
	ns := "data"
	cl.CreateNamespace(t, ns)
	image := cl.StandIns(t)["postgresImage"]
	const password = "Passw0rdOfSixteenPlus"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: postgresPod}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: postgresContainer, Image: image,
			// The server starts once the test makes /tmp/go.
			Command: []string{"/bin/sh", "-c", "while [ ! -e /tmp/go ]; do sleep 1; done; exec /usr/local/bin/docker-entrypoint"},
			Env: []corev1.EnvVar{{Name: "POSTGRES_USER", Value: "app"}, {Name: "POSTGRES_DB", Value: "app"},
				{Name: "POSTGRES_PASSWORD", Value: password}, {Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"}},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/postgresql/data"}}}},
		Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}}
	if _, err := cl.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e := &rollout.Client{Ref: rollout.AppRef{Namespace: ns}, Kube: cl.Client, Rest: cl.Rest}
	defer func() {
		if t.Failed() {
			p, _ := cl.Client.CoreV1().Pods(ns).Get(ctx, postgresPod, metav1.GetOptions{})
			logs, _ := cl.Client.CoreV1().Pods(ns).GetLogs(postgresPod, &corev1.PodLogOptions{Container: postgresContainer}).DoRaw(ctx)
			t.Logf("pod status %+v\nlogs:\n%s", p.Status.ContainerStatuses, logs)
		}
	}()
	if _, retry, err := superuserSQLOnce(ctx, e, "SELECT 1"); !retry || err == nil {
		t.Fatalf("a pod not yet running: retry %v, %v", retry, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !postgresRunning(ctx, e) {
		if time.Now().After(deadline) {
			t.Fatal("the pod's container never ran")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if _, retry, err := superuserSQLOnce(ctx, e, "SELECT 1"); !retry || err == nil || !strings.Contains(err.Error(), "psql exited 2") {
		t.Fatalf("a container without its server: retry %v, %v", retry, err)
	}
	go func() { // the server starts 3 s into ensureLogins
		time.Sleep(3 * time.Second)
		for try := 1; ; try++ {
			var stderr strings.Builder
			code, err := kexec.Run(ctx, e.Kube, e.Rest, kexec.Options{Namespace: ns, Pod: postgresPod, Container: postgresContainer,
				Command: []string{"/bin/sh", "-c", ": > /tmp/go"}, Stderr: &stderr})
			if err == nil && code == 0 {
				return
			}
			t.Logf("start the server (try %d): exit %d, %v: %s", try, code, err, stderr.String())
			if try == 10 {
				t.Error("the server was never started")
				return
			}
			time.Sleep(time.Second)
		}
	}()
	var waited []string
	waiting := func(reason string) { waited = append(waited, reason) }
	if err := ensureLogins(ctx, e, password, waiting); err != nil {
		t.Fatalf("ensureLogins on a starting server: %v", err)
	}
	if len(waited) != 1 {
		t.Errorf("told of the wait %d times, want once: %q", len(waited), waited)
	}
	if err := ensureLogins(ctx, e, password, waiting); err != nil {
		t.Fatalf("ensureLogins again: %v", err)
	}
	if len(waited) != 1 {
		t.Errorf("a running server was waited for: %q", waited)
	}
	login := outputs.DatabaseLogin(password)
	out, err := superuserSQL(ctx, e, "SELECT rolname, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = '"+login+"'", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != login+"|t|f" {
		t.Errorf("the app's login: %q, want %s, a login and no superuser", got, login)
	}
}
