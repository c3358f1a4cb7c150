package launch

import (
	"context"
	"fmt"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/target"
)

// checkOwnership runs before the engine changes anything, on a cluster the
// stack shares (its target sweeps only some namespaces): the cluster must
// answer and let this user make what up makes (checkAccess); every namespace
// the stack makes must be free or already its own, and the in-cluster
// registry's node port free or its own. A namespace of another stack is
// refused naming that stack; one made by hand or another tool is refused
// too. The cluster is reached through what a preview's parent hands it, or
// what the stack recorded, or what its config says; a cluster the stack
// has yet to make is skipped.
func checkOwnership(ctx context.Context, d Deps, tg target.Target, cfg *config.Stack, st *engine.Stack, parent *target.Handoff, kubeDir string) error {
	site := SiteFromConfig(tg, d.Engine.Project(), cfg)
	namespaces := tg.SweepNamespaces(cfg, site.Namespace)
	if namespaces == nil {
		return nil // the stack owns its whole cluster
	}
	outs, err := st.Outputs(ctx)
	if err != nil {
		return fmt.Errorf("read the outputs of %s: %w", cfg.Name, err)
	}
	recorded := outputs.Decode(outs.Values())
	switch {
	case parent != nil:
		// A preview reaches its parent's cluster as this run records it.
		if site.Kubeconfig, site.Context, err = handoffCluster(parent, kubeDir, cfg.Name); err != nil {
			return err
		}
	case len(outs) > 0:
		if err := ResolveSite(ctx, st, outs, &site, kubeDir); err != nil {
			return fmt.Errorf("where the app is: %w", err)
		}
	}
	if site.Kubeconfig == "" && site.Context == "" {
		return nil // a cluster this stack makes: nothing there yet
	}
	kube, _, err := rollout.Connect(rollout.AppRef{Kubeconfig: site.Kubeconfig, Context: site.Context})
	if err != nil {
		return fmt.Errorf("connect to check who owns %s: %w", site.Namespace, err)
	}
	if err := checkAccess(ctx, kube, site, namespaces); err != nil {
		return err
	}
	me := d.Engine.Project() + "/" + cfg.Name
	for _, name := range namespaces {
		ns, err := kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read namespace %s: %w", name, err)
		}
		switch owner := outputs.Owner(ns.Labels); {
		case owner == me:
		case owner != "":
			return failure.Newf(failure.Config, fixNamespace(name),
				"namespace %s belongs to stack %s: this stack (%s) would take it over, and destroying either would delete the other's data; nothing was changed", name, owner, me)
		case ns.Labels[outputs.LabelManagedBy] == outputs.ManagedBy && len(outs) > 0 && (recorded.Namespace == name || name != site.Namespace):
			// made by this stack before namespaces carried their owner: up marks it now
		default:
			return failure.Newf(failure.Config, fixNamespace(name),
				"namespace %s already exists and is not this stack's (made by hand, another tool, or a stack of an older liftoff): up would take it over; nothing was changed", name)
		}
	}
	if cfg.Registry.Repository != "" || !cfg.UsesClusterServices() {
		return nil
	}
	svcs, err := kube.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list the cluster's Services: %w", err)
	}
	for _, s := range svcs.Items {
		for _, p := range s.Spec.Ports {
			if p.NodePort != outputs.RegistryNodePort || s.Namespace == site.Namespace {
				continue
			}
			owner := outputs.Owner(s.Labels)
			if ns, err := kube.CoreV1().Namespaces().Get(ctx, s.Namespace, metav1.GetOptions{}); err == nil && owner == "" {
				owner = outputs.Owner(ns.Labels)
			}
			if owner == "" {
				owner = "namespace " + s.Namespace
			}
			return failure.Newf(failure.Config, "give this stack a registry outside the cluster (liftoff config set registry ghcr.io/you/app): a cluster has one in-cluster registry",
				"the in-cluster registry's node port %d is taken by Service %s/%s (%s): nothing was changed", outputs.RegistryNodePort, s.Namespace, s.Name, owner)
		}
	}
	return nil
}

// handoffCluster is how a preview stack reaches the cluster its parent hands
// it: the parent's kubeconfig file, or the content handed (the preview's
// own, or the parent's), kept where the preview's own runs keep it.
func handoffCluster(h *target.Handoff, kubeDir, stack string) (kubeconfig, context string, err error) {
	if c := h.Str(outputs.KubeconfigContent); c != "" {
		path, err := keepKubeconfig(kubeDir, stack, c)
		return path, h.Str(outputs.Context), err
	}
	return h.Str(outputs.Kubeconfig), h.Str(outputs.Context), nil
}

func fixNamespace(name string) string {
	return "give this stack a namespace of its own: liftoff config set namespace <name> (" + name + " is taken)"
}

// checkAccess: the cluster answers within a bound, and the kubeconfig's
// user may create the namespaces and what the app's namespace holds, so a
// cluster up cannot change fails before anything changes, naming the fix.
func checkAccess(ctx context.Context, kube kubernetes.Interface, site Site, namespaces []string) error {
	where := fmt.Sprintf("kubeconfig %s (context %q)", site.Kubeconfig, site.Context)
	fix := "point --kubeconfig/--context (or liftoff:kubeconfig, liftoff:context) at a reachable cluster"
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := kube.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
		if apierrors.IsUnauthorized(err) {
			return failure.New(failure.Auth, fmt.Errorf("the cluster of %s refused the credentials: %w", where, err), "renew the kubeconfig's credentials (e.g. aws eks update-kubeconfig, or your cluster's login)")
		}
		return failure.New(failure.Config, fmt.Errorf("the cluster of %s does not answer: %w", where, err), fix)
	}
	type need struct{ ns, group, resource string }
	needs := []need{{"", "", "namespaces"}}
	for _, n := range namespaces {
		needs = append(needs, need{n, "apps", "deployments"}, need{n, "", "secrets"}, need{n, "", "services"})
		if n == site.Namespace {
			needs = append(needs, need{n, "networking.k8s.io", "networkpolicies"})
		}
	}
	for _, nd := range needs {
		review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: nd.ns, Verb: "create", Group: nd.group, Resource: nd.resource}}}
		res, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("ask the cluster what %s may do: %w", where, err)
		}
		if !res.Status.Allowed {
			what := nd.resource
			if nd.ns != "" {
				what += " in namespace " + nd.ns
			}
			return failure.Newf(failure.Auth, "use a kubeconfig user allowed to create them (e.g. one bound to cluster-admin, or admin in those namespaces and namespace creation)",
				"the user of %s may not create %s, which up makes; nothing was changed", where, what)
		}
	}
	return nil
}
