package config

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Parse validates values for the named stack and returns the typed config.
// It reports every problem at once, as *Errors.
func Parse(stack string, values Values) (*Stack, error) {
	r := &Reader{values: values}
	s := &Stack{Name: stack}
	r.Check(stackNameRE.MatchString(stack), "stack", stack,
		"must be a lower-case DNS label of at most 30 characters (it names namespaces and cloud resources)",
		"pick a name like dev, prod or pr-42")

	for key := range values {
		if strings.HasPrefix(key, Namespace+":") {
			if _, ok := Lookup(key); !ok {
				fix := "remove it: liftoff config rm " + ShortName(key)
				if s := suggest(key); s != "" {
					fix = "did you mean " + ShortName(s) + "? " + fix
				}
				r.Fail(key, values[key], "is not a liftoff setting", fix)
			}
		}
	}

	s.Target = TargetName(r.Enum("liftoff:target", "", TargetNames()...))
	if _, ok := values["liftoff:target"]; !ok {
		r.Fail("liftoff:target", Value{}, "is not set", "run liftoff init, or liftoff config set target "+DefaultTarget())
	}
	spec, _ := Spec(s.Target)

	s.App.Name = r.Str("liftoff:app", DefaultApp, dnsLabel(40))
	s.Preview = nil
	if of := r.Str("liftoff:previewOf", "", dnsLabel(30)); of != "" {
		r.Check(of != stack, "liftoff:previewOf", of, "names this stack itself", "name the parent stack, e.g. prod")
		s.Preview = &Preview{Of: of, TTL: r.Duration("liftoff:ttl", 72*time.Hour, time.Hour, 720*time.Hour),
			Kubeconfig: r.Str("liftoff:previewKubeconfig", "", NonEmpty), Context: r.Str("liftoff:previewContext", "", nil)}
		for _, key := range []string{"liftoff:maxPreviews", "liftoff:previewDomain", "liftoff:observability", "liftoff:retention", "liftoff:alertWebhook"} {
			if v, ok := values[key]; ok {
				r.Fail(key, v, "is the parent stack's setting: a preview uses its parent's", "remove it (liftoff config rm "+ShortName(key)+") and set it on "+of)
			}
		}
	} else {
		r.ignore("liftoff:ttl", "liftoff:previewKubeconfig", "liftoff:previewContext")
	}
	s.MaxPreviews = r.Int("liftoff:maxPreviews", 10, 1, 100)
	s.PreviewDomain = r.Str("liftoff:previewDomain", "", domainName)
	defNS := s.App.Name
	if s.Preview != nil {
		defNS = s.App.Name + "-" + stack
	}
	s.App.Namespace = r.Str("liftoff:namespace", defNS, dnsLabel(63))
	s.App.Replicas = r.Int("liftoff:replicas", DefaultReplicas, 1, 50)
	s.App.Secrets = r.Secret("liftoff:appSecrets", false, func(v string) error { _, err := DecodeAppSecrets(v); return err })
	s.App.Package = r.Str("liftoff:package", DefaultPackage, goPackage)
	s.App.Image = r.Str("liftoff:image", "", ImageRef)
	defMigrate := "off"
	if s.App.Package == DefaultPackage {
		defMigrate = DefaultMigrate
	}
	if m := r.Str("liftoff:migrate", defMigrate, NonEmpty); m != "off" {
		s.App.Migrate = strings.Fields(m)
	}
	s.App.Domain = r.Str("liftoff:domain", "", domainName)
	s.ScaleDownDelay = r.Duration("liftoff:scaleDownDelay", DefaultScaleDownDelay, 0, 24*time.Hour)
	s.Rollout = Rollout{
		Bake:        r.Duration("liftoff:bake", DefaultBake, 0, time.Hour),
		MaxP99:      r.Duration("liftoff:bakeMaxP99", 250*time.Millisecond, time.Millisecond, time.Minute),
		MinRequests: r.Int("liftoff:bakeMinRequests", 100, 1, 1_000_000),
	}
	ratio := r.Str("liftoff:bakeMaxErrors", "0.5%", percent)
	s.Rollout.MaxErrorRatio, _ = ParsePercent(ratio)
	s.Rollout.Steps, _ = ParseSteps(r.Str("liftoff:steps", "off", func(v string) error { _, err := ParseSteps(v); return err }))
	s.Rollout.AutoscaleMin, s.Rollout.AutoscaleMax, _ = ParseRange(r.Str("liftoff:autoscale", "off", func(v string) error { _, _, err := ParseRange(v); return err }))
	s.Rollout.AutoscaleCPU = r.Int("liftoff:autoscaleCPU", 70, 10, 100)
	s.Rollout.AutoscaleRPS = r.Int("liftoff:autoscaleRPS", 0, 0, 1_000_000)
	if s.Rollout.AutoscaleMax > 0 && s.Rollout.AutoscaleMin < s.App.Replicas {
		r.Fail("liftoff:autoscale", Plain(fmt.Sprintf("%d-%d", s.Rollout.AutoscaleMin, s.Rollout.AutoscaleMax)), fmt.Sprintf("starts below liftoff:replicas (%d), which a deploy brings up anyway", s.App.Replicas),
			fmt.Sprintf("liftoff config set autoscale %d-%d", s.App.Replicas, max(s.Rollout.AutoscaleMax, s.App.Replicas)))
	}
	if len(s.Rollout.Steps) > 0 && s.Rollout.Bake == 0 {
		r.Fail("liftoff:steps", Plain(strings.Trim(fmt.Sprint(s.Rollout.Steps), "[]")), "needs a bake: each step is held and judged for liftoff:bake",
			"liftoff config set bake 1m, or liftoff config set steps off")
	}

	s.Notify = r.Secret("liftoff:notify", false, webhook)
	s.Observability = Observability{
		Enabled:         r.Bool("liftoff:observability", true) && s.Preview == nil,
		Retention:       r.Duration("liftoff:retention", 7*24*time.Hour, 24*time.Hour, 90*24*time.Hour),
		AlertWebhook:    r.Secret("liftoff:alertWebhook", false, webhook),
		GrafanaPassword: r.Secret("liftoff:grafanaPassword", false, GeneratedSecret),
		Images:          map[string]string{},
		Off: r.List("liftoff:observabilityOff", nil, func(p string) error {
			if !slices.Contains(ObservabilityParts, p) {
				return fmt.Errorf("is not a part of the monitoring stack liftoff can leave out (%s)", strings.Join(ObservabilityParts, ", "))
			}
			return nil
		}),
	}
	for part, key := range MonitoringImages {
		if ref := r.Str(key, "", ImageRef); ref != "" {
			s.Observability.Images[part] = ref
		}
	}
	s.ChartMirror = r.Str("liftoff:chartMirror", "", chartMirror)
	s.Images = Images{
		Postgres: r.Str("liftoff:postgresImage", DefaultPostgresImage, ImageRef),
		Valkey:   r.Str("liftoff:valkeyImage", DefaultValkeyImage, ImageRef),
		Registry: r.Str("liftoff:registryImage", DefaultRegistryImage, ImageRef),
	}

	// A target's managed services are its own; a preview runs in-cluster
	// on its parent's cluster.
	dbModes, cacheModes := []string{"in-cluster", "external"}, []string{"in-cluster", "external", "none"}
	dbDefault := "in-cluster"
	if s.Preview == nil {
		dbModes, cacheModes = append(dbModes, spec.Databases...), append(cacheModes, spec.Caches...)
		if len(spec.Databases) > 0 {
			dbDefault = spec.Databases[0]
		}
	}
	s.Database.Mode = r.Enum("liftoff:database", dbDefault, dbModes...)
	s.Database.URL = r.Secret("liftoff:databaseUrl", s.Database.Mode == "external", postgresURL)
	s.Database.Password = r.Secret("liftoff:databasePassword", false, GeneratedSecret)
	defSchedule := DefaultBackupSchedule
	if s.Preview != nil {
		defSchedule = "off" // a preview's data is its parent's copy, or throwaway
	}
	s.Backup = Backup{Schedule: r.Str("liftoff:backupSchedule", defSchedule, cronSchedule), Retain: r.Int("liftoff:backupRetain", 7, 1, 365),
		Verify: r.Bool("liftoff:backupVerify", true)}
	if s.Backup.Schedule == "off" {
		s.Backup.Schedule = ""
	}
	s.Cache.Mode = r.Enum("liftoff:cache", "in-cluster", cacheModes...)
	s.Cache.URL = r.Secret("liftoff:cacheUrl", s.Cache.Mode == "external", redisURL)
	s.Cache.Password = r.Secret("liftoff:cachePassword", false, GeneratedSecret)

	if s.Preview != nil {
		// A preview runs on its parent's cluster and registry, read from the
		// parent's outputs: its own target settings would be ignored.
		for key, v := range values {
			if k, ok := Lookup(key); ok && k.Targets != nil {
				r.Fail(key, v, "is read from the parent stack's outputs in a preview", "remove it: liftoff config rm "+ShortName(key))
			}
		}
		if err := r.err(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if spec.Parse != nil {
		s.Section = spec.Parse(r, s)
	}
	if spec.ClusterServices {
		s.Registry = Registry{
			Repository: r.Str("liftoff:registry", "", repository),
			Insecure:   r.Bool("liftoff:insecureRegistry", false),
			Password:   r.Secret("liftoff:registryPassword", false, GeneratedSecret),
		}
		s.StorageClass = r.Str("liftoff:storageClass", spec.StorageClass, DNSSubdomain)
	}

	// Keys of another target are an error: they would be silently ignored.
	for key, v := range values {
		if k, ok := Lookup(key); ok && s.Target != "" && !k.AppliesTo(s.Target) && !r.used[key] {
			r.Fail(key, v, fmt.Sprintf("does not apply to target %s", s.Target), "remove it: liftoff config rm "+ShortName(key))
		}
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	return s, nil
}
