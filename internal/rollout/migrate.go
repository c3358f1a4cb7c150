package rollout

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// ErrMigrate: the app's migrations were refused, failed, or broke the live
// slot; the new slot was never started.
var ErrMigrate = errors.New("migrate")

// Migration is one pending migration, as the app's plan names it.
type Migration struct {
	Name string `json:"name"`
	SQL  string `json:"sql"`
}

// The app's plan (its migrate command with --plan) is one block on stdout:
//
//	-- liftoff:plan
//	-- liftoff:migration 0003_add_tags.sql
//	ALTER TABLE urls ADD COLUMN tags text[];
//	-- liftoff:end
const (
	planStart     = "-- liftoff:plan"
	planMigration = "-- liftoff:migration "
	planEnd       = "-- liftoff:end"
)

// ParsePlan reads the pending migrations from the plan command's output
// (log lines around the block are ignored); no block is an error.
func ParsePlan(out string) ([]Migration, error) {
	var (
		pending []Migration
		in, end bool
	)
	lines := bufio.NewScanner(strings.NewReader(out))
	lines.Buffer(make([]byte, 64<<10), 4<<20)
	for lines.Scan() && !end {
		l := lines.Text()
		switch {
		case l == planStart:
			in = true
		case !in:
		case l == planEnd:
			end = true
		case strings.HasPrefix(l, planMigration):
			pending = append(pending, Migration{Name: strings.TrimPrefix(l, planMigration)})
		case len(pending) > 0:
			pending[len(pending)-1].SQL += l + "\n"
		}
	}
	if !end {
		return nil, fmt.Errorf("the plan command printed no %q ... %q block", planStart, planEnd)
	}
	return pending, nil
}

// breakingRules are what a migration can do that the slot still running
// the old code does not survive: blue-green shares one database, so until
// the flip the old release must work on the new schema.
var breakingRules = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`(?is)\bDROP\s+(TABLE|SCHEMA|VIEW|MATERIALIZED\s+VIEW)\b`), "drops a table"},
	{regexp.MustCompile(`(?is)\bRENAME\b`), "renames a table or column"},
	{regexp.MustCompile(`(?is)\bALTER\s+(COLUMN\s+)?("[^"]+"|\w+)\s+(SET\s+DATA\s+)?TYPE\b`), "changes a column's type"},
	{regexp.MustCompile(`(?is)\bSET\s+NOT\s+NULL\b`), "makes a column NOT NULL"},
	{regexp.MustCompile(`(?is)\bADD\s+(COLUMN\s+)?(IF\s+NOT\s+EXISTS\s+)?("[^"]+"|\w+)\s[^,;]*\bNOT\s+NULL\b`), "adds a NOT NULL column"},
	{regexp.MustCompile(`(?is)\bTRUNCATE\b`), "truncates a table"},
}

// alterDrops are the DROP clauses of an ALTER TABLE; safeDrop those of
// them that take nothing the old code reads (a constraint, a default).
var (
	alterTable = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\b`)
	alterDrops = regexp.MustCompile(`(?is)\bDROP\s+(\w+)(\s+\w+)?`)
	safeDrop   = regexp.MustCompile(`(?i)^(CONSTRAINT|DEFAULT|IDENTITY|EXPRESSION|NOT)$`)
)

// dropsColumn reports whether an ALTER TABLE statement drops a column.
func dropsColumn(stmt string) bool {
	if !alterTable.MatchString(stmt) {
		return false
	}
	for _, m := range alterDrops.FindAllStringSubmatch(stmt, -1) {
		if !safeDrop.MatchString(m[1]) {
			return true // DROP COLUMN x, DROP x, DROP IF EXISTS x
		}
	}
	return false
}

// Breaking says why a migration's SQL would break the slot still running
// the old code ("" when liftoff sees nothing of the kind). It reads the SQL
// statement by statement; an ADD ... NOT NULL with a DEFAULT is fine.
func Breaking(sql string) string {
	for _, stmt := range strings.Split(stripComments(sql), ";") {
		show := strings.Join(strings.Fields(stmt), " ")
		if dropsColumn(stmt) {
			return fmt.Sprintf("drops a column (%s)", show)
		}
		for _, r := range breakingRules {
			if !r.re.MatchString(stmt) {
				continue
			}
			if r.why == "adds a NOT NULL column" && hasDefault.MatchString(stmt) {
				continue
			}
			return fmt.Sprintf("%s (%s)", r.why, show)
		}
	}
	return ""
}

var (
	comments   = regexp.MustCompile(`(?m)--[^\n]*$`)
	hasDefault = regexp.MustCompile(`(?i)\bDEFAULT\b`)
)

func stripComments(sql string) string { return comments.ReplaceAllString(sql, "") }

// migrate is the deploy's migration step, under the deploy lock and before
// the new slot starts: the app's plan is read with the new image; nothing
// pending, nothing to do. A migration liftoff sees is breaking is refused
// unless allowed; otherwise the BeforeMigrate hook runs (a backup), the
// migrations run, and the live slot is smoke-tested again: if it fails, the
// deploy stops here, naming the migration and the way back.
func (d *deployment) migrate(ctx context.Context) error {
	e, o := d.e, d.o
	if len(o.Migrate) == 0 || o.ReuseLive {
		return nil // the live image's migrations ran when it was deployed
	}
	out, err := e.runJob(ctx, "plan", d.img, append(append([]string(nil), o.Migrate...), "--plan"), o, d.secretsVersion)
	if err != nil {
		return fmt.Errorf("read the migration plan: %w", err)
	}
	pending, err := ParsePlan(out)
	if err != nil {
		return failure.New(failure.Config, fmt.Errorf("the app's migration plan (%s --plan): %w", strings.Join(o.Migrate, " "), err),
			"make the app's migrate command print its plan (docs/data.md, migrations), or turn the phase off: liftoff config set migrate off")
	}
	if len(pending) == 0 {
		return nil
	}
	var names []string
	for _, m := range pending {
		names = append(names, m.Name)
		if why := Breaking(m.SQL); why != "" && !o.AllowBreakingMigration {
			return failure.Newf(failure.Config, "make it two backward-compatible releases (add, deploy, then remove in the next), or run it anyway with --allow-breaking-migration after a backup",
				"migration %s %s: the live slot, still on the old code, would break; nothing was changed", m.Name, why)
		}
	}
	d.res.Migrations = names
	undo := ""
	if o.BeforeMigrate != nil {
		if undo, err = o.BeforeMigrate(ctx, pending); err != nil {
			return fmt.Errorf("before migrating: %w", err)
		}
	}
	e.Log.Infof("migrating: %s", strings.Join(names, ", "))
	if _, err := e.runJob(ctx, "migrate", d.img, o.Migrate, o, d.secretsVersion); err != nil {
		return failure.New(failure.Health, fmt.Errorf("migration %s: %w", strings.Join(names, ", "), err), undoFix(undo))
	}
	if d.live == "" {
		return nil
	}
	if err := e.SmokeLive(ctx); err != nil {
		return failure.New(failure.Health, fmt.Errorf("after migration %s the live slot %s fails: %w; the new slot was not started", strings.Join(names, ", "), d.live, err), undoFix(undo))
	}
	return nil
}

func undoFix(undo string) string {
	if undo == "" {
		return "fix the migration and deploy again"
	}
	return "fix the migration; to return to the data from before it: " + undo
}

// runJob runs the app's image once as a Job (the app's environment, no
// Service, no traffic) with command, waits for it within the ready
// timeout, and returns its output; a failed Job is an error with the end
// of its output. The Job is deleted afterwards.
func (e *Client) runJob(ctx context.Context, what string, img Image, command []string, o DeployOptions, secretsVersion string) (string, error) {
	suffix := make([]byte, 3)
	rand.Read(suffix)
	name := fmt.Sprintf("%s-%s-%s", e.Ref.App, what, hex.EncodeToString(suffix))
	envFrom := []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: o.secretName(e.Ref.App)}}}}
	if secretsVersion != "" {
		envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: e.SecretsName(secretsVersion)}}})
	}
	var pulls []corev1.LocalObjectReference
	for _, s := range o.ImagePullSecrets {
		pulls = append(pulls, corev1.LocalObjectReference{Name: s})
	}
	labels := map[string]string{LabelApp: e.Ref.App, LabelManagedBy: "liftoff", LabelComponent: componentMigrate}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To[int32](0),
			ActiveDeadlineSeconds:   ptr.To(int64(max(e.ReadyTimeout, time.Minute) / time.Second)),
			TTLSecondsAfterFinished: ptr.To[int32](600),
			Template: corev1.PodTemplateSpec{
				// The migration reaches the in-cluster PostgreSQL (its NetworkPolicy admits the label).
				ObjectMeta: metav1.ObjectMeta{Labels: with(labels, outputs.ClientLabel("postgres"), "true")},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					AutomountServiceAccountToken: ptr.To(false),
					ImagePullSecrets:             pulls,
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "app", Image: img.Ref, Command: command, EnvFrom: envFrom,
						Env: []corev1.EnvVar{{Name: "SLOT", Value: what}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}
	jobs := e.Kube.BatchV1().Jobs(e.Ref.Namespace)
	if _, err := jobs.Create(ctx, job, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create job %s: %w", name, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		jobs.Delete(dctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
	}()
	deadline := e.Now().Add(max(e.ReadyTimeout, time.Minute))
	for {
		j, err := jobs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("read job %s: %w", name, err)
		}
		switch {
		case j.Status.Succeeded > 0:
			return e.jobOutput(ctx, name), nil
		case j.Status.Failed > 0:
			return "", fmt.Errorf("job %s failed: %s", name, lastLines(e.jobOutput(ctx, name), 10))
		case e.Now().After(deadline):
			return "", fmt.Errorf("job %s did not finish within %s", name, max(e.ReadyTimeout, time.Minute))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(max(e.Poll, 100*time.Millisecond)):
		}
	}
}

// jobOutput is the log of a Job's pod (at most 4 MiB).
func (e *Client) jobOutput(ctx context.Context, job string) string {
	pods, err := e.Kube.CoreV1().Pods(e.Ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job})
	if err != nil || len(pods.Items) == 0 {
		return ""
	}
	rc, err := e.Kube.CoreV1().Pods(e.Ref.Namespace).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).Stream(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 4<<20))
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// componentMigrate marks the migration Jobs (network policies admit them to the database).
const componentMigrate = "migrate"

// with is labels plus k=v, labels unchanged.
func with(labels map[string]string, k, v string) map[string]string {
	out := maps.Clone(labels)
	out[k] = v
	return out
}
