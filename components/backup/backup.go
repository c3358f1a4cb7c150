// Package backup is the app database's scheduled backups, run in the
// cluster so they happen while the laptop is closed: a CronJob of the
// database's own image dumps the app's database into a volume, restores
// each dump into a scratch server in the same pod as a drill, writes its
// metadata beside it (liftoff db backups lists them) and keeps the newest.
package backup

import (
	_ "embed"
	"fmt"
	"maps"
	"slices"
	"strconv"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/kube"
	dbbackup "github.com/liftoff-dev/liftoff/internal/backup"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

//go:embed job.sh
var script string

// Names of what the component declares in the app's namespace.
const (
	JobName = "backup"
	// MountPath is where the backups volume is mounted, in the job and in
	// liftoff's database tools.
	MountPath = dbbackup.VolumePath
)

// Args configure New. They are plain values, checked by New.
type Args struct {
	Namespace, App, Project, Stack string
	// Image is the database's image (pg_dump and friends of its version).
	Image string
	// Schedule is a cron expression; Retain how many backups to keep;
	// Verify runs the restore drill after each.
	Schedule string
	Retain   int
	Verify   bool
	// URLSecret holds the database's URL under DATABASE_URL; DatabaseMode
	// is recorded in the metadata (in-cluster, rds, external).
	URLSecret, DatabaseMode string
	StorageClass            string
	SizeGB                  int
}

// Scheduled is the backups volume and the CronJob that fills it.
type Scheduled struct {
	pulumi.ResourceState
}

// New declares the scheduled backups in the namespace of the provider in opts.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Scheduled, error) {
	switch {
	case args == nil || args.Namespace == "" || args.Image == "" || args.URLSecret == "" || args.Schedule == "":
		return nil, fmt.Errorf("backup: namespace, image, URL secret and schedule are required")
	case args.Retain < 1:
		return nil, fmt.Errorf("backup: retain must be 1 or more")
	}
	if args.SizeGB == 0 {
		args.SizeGB = 10
	}
	s := &Scheduled{}
	if err := ctx.RegisterComponentResource("liftoff:backup:Scheduled", name, s, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(s)
	claim := &corev1.PersistentVolumeClaimSpecArgs{AccessModes: pulumi.StringArray{pulumi.String("ReadWriteOnce")},
		Resources: &corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{"storage": pulumi.Sprintf("%dGi", args.SizeGB)}}}
	if args.StorageClass != "" {
		claim.StorageClassName = pulumi.String(args.StorageClass)
	}
	pvc, err := corev1.NewPersistentVolumeClaim(ctx, name+"-volume", &corev1.PersistentVolumeClaimArgs{
		Metadata: kube.Meta(dbbackup.ClaimName, args.Namespace), Spec: claim}, child)
	if err != nil {
		return nil, err
	}
	env := corev1.EnvVarArray{
		corev1.EnvVarArgs{Name: pulumi.String("DATABASE_URL"), ValueFrom: &corev1.EnvVarSourceArgs{SecretKeyRef: &corev1.SecretKeySelectorArgs{
			Name: pulumi.String(args.URLSecret), Key: pulumi.String("DATABASE_URL")}}},
	}
	// In a fixed order: a map's would change the CronJob on every up.
	vars := map[string]string{"PROJECT": args.Project, "STACK": args.Stack, "APP": args.App, "DATABASE_MODE": args.DatabaseMode,
		"BACKUP_RETAIN": strconv.Itoa(args.Retain), "BACKUP_VERIFY": strconv.FormatBool(args.Verify),
		"COUNTS_SQL": dbbackup.CountsSQL, "MIGRATION_SQL": dbbackup.MigrationSQL}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, corev1.EnvVarArgs{Name: pulumi.String(k), Value: pulumi.String(vars[k])})
	}
	labels := pulumi.StringMap{outputs.LabelName: pulumi.String(args.App), outputs.LabelManagedBy: pulumi.String(outputs.ManagedBy),
		"liftoff.dev/component": pulumi.String("db-backup"), outputs.ClientLabel("postgres"): pulumi.String("true")}
	_, err = batchv1.NewCronJob(ctx, name, &batchv1.CronJobArgs{
		Metadata: kube.Meta(JobName, args.Namespace),
		Spec: &batchv1.CronJobSpecArgs{
			Schedule: pulumi.String(args.Schedule), ConcurrencyPolicy: pulumi.String("Forbid"),
			SuccessfulJobsHistoryLimit: pulumi.Int(1), FailedJobsHistoryLimit: pulumi.Int(2),
			JobTemplate: &batchv1.JobTemplateSpecArgs{Spec: &batchv1.JobSpecArgs{
				BackoffLimit: pulumi.Int(1), ActiveDeadlineSeconds: pulumi.Int(3600),
				Template: &corev1.PodTemplateSpecArgs{
					Metadata: &metav1.ObjectMetaArgs{Labels: labels},
					Spec: &corev1.PodSpecArgs{
						RestartPolicy:                pulumi.String("Never"),
						AutomountServiceAccountToken: pulumi.Bool(false),
						SecurityContext:              kube.Restricted(999),
						Containers: corev1.ContainerArray{corev1.ContainerArgs{
							Name: pulumi.String("backup"), Image: pulumi.String(args.Image),
							Command:         pulumi.ToStringArray([]string{"sh", "-c", script}),
							Env:             env,
							SecurityContext: kube.NoPrivileges(),
							VolumeMounts: corev1.VolumeMountArray{
								corev1.VolumeMountArgs{Name: pulumi.String("backups"), MountPath: pulumi.String(MountPath)},
								corev1.VolumeMountArgs{Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp")},
							},
							Resources: &corev1.ResourceRequirementsArgs{
								Requests: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi")},
								Limits:   pulumi.StringMap{"memory": pulumi.String("1Gi")},
							},
						}},
						Volumes: corev1.VolumeArray{
							corev1.VolumeArgs{Name: pulumi.String("backups"), PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSourceArgs{
								ClaimName: pvc.Metadata.Name().Elem()}},
							corev1.VolumeArgs{Name: pulumi.String("tmp"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{}},
						},
					},
				},
			}},
		},
	}, child)
	if err != nil {
		return nil, err
	}
	return s, ctx.RegisterResourceOutputs(s, pulumi.Map{})
}
