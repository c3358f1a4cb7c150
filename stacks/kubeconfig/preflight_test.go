package kubeconfig_test

import (
	"context"
	"strings"
	"testing"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/internal/ui"
	"github.com/liftoff-dev/liftoff/stacks/kubeconfig"
)

// TestPreflightMetricsAPI asks a real API server whether the program must
// install metrics-server: only for a stack that autoscales, and only when
// the cluster's metrics API is missing or is this stack's own.
func TestPreflightMetricsAPI(t *testing.T) {
	cl := testenv.StartCluster(t)
	ctx := context.Background()
	facts := func(autoscale, metricsServer string) (target.Facts, string) {
		t.Helper()
		cfg, err := config.Parse("dev", config.Values{"liftoff:target": config.Plain("kubeconfig"), "liftoff:kubeconfig": config.Plain(cl.Kubeconfig),
			"liftoff:context": config.Plain(cl.Context), "liftoff:autoscale": config.Plain(autoscale), "liftoff:metricsServer": config.Plain(metricsServer)})
		if err != nil {
			t.Fatal(err)
		}
		s, _, _, errOut := ui.Test()
		f, err := kubeconfig.Target{}.Preflight(ctx, target.PreflightInput{Config: cfg, Project: "shop", Log: ui.NewPrinter(s, ui.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		return f, errOut.String()
	}
	register := func(labels string) {
		t.Helper()
		body := `{"apiVersion":"apiregistration.k8s.io/v1","kind":"APIService","metadata":{"name":"v1beta1.metrics.k8s.io","labels":{` + labels + `}},
"spec":{"group":"metrics.k8s.io","version":"v1beta1","groupPriorityMinimum":100,"versionPriority":100,"insecureSkipTLSVerify":true,
"service":{"namespace":"kube-system","name":"metrics-server"}}}`
		c := cl.Client.Discovery().RESTClient()
		c.Delete().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io").Do(ctx)
		if err := c.Post().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices").SetHeader("Content-Type", "application/json").Body([]byte(body)).Do(ctx).Error(); err != nil {
			t.Fatal(err)
		}
	}

	if f, _ := facts("off", "auto"); f.MetricsServer {
		t.Error("a stack that does not autoscale installs metrics-server")
	}
	if f, log := facts("2-5", "auto"); !f.MetricsServer || !strings.Contains(log, "the cluster has no metrics API: up installs metrics-server") {
		t.Errorf("no metrics API: %+v %q", f, log)
	}
	if f, _ := facts("2-5", "off"); f.MetricsServer {
		t.Error("metricsServer off installs metrics-server")
	}
	register(`"app.kubernetes.io/managed-by":"liftoff","liftoff.dev/project":"shop","liftoff.dev/stack":"dev"`)
	if f, _ := facts("2-5", "auto"); !f.MetricsServer {
		t.Error("this stack's own metrics-server is not kept")
	}
	register(`"app.kubernetes.io/managed-by":"liftoff","liftoff.dev/project":"shop","liftoff.dev/stack":"prod"`)
	if f, log := facts("2-5", "auto"); f.MetricsServer || !strings.Contains(log, "stack shop/prod's metrics-server") {
		t.Errorf("another stack's metrics-server: %+v %q", f, log)
	}
	register("")
	if f, _ := facts("2-5", "auto"); f.MetricsServer {
		t.Error("the cluster's own metrics API is replaced")
	}
}
