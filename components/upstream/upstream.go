// Package upstream says where the third-party Helm charts liftoff installs
// come from: their public repositories, or one mirror the user names (an
// HTTP Helm repository or an OCI registry) for a cluster that cannot reach
// them. The components keep their own pins.
package upstream

import (
	"strings"

	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	helmv4 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v4"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Chart is a pinned upstream Helm chart.
type Chart struct {
	Name, Repo, Version string
}

// Source is what Pulumi's Helm resources fetch: with no mirror, the chart
// from its public repository; with an HTTP Helm repository as the mirror,
// the chart by name from it; with oci://host/path, the chart at
// oci://host/path/<name> (repo is then "").
func (c Chart) Source(mirror string) (chart, repo string) {
	switch {
	case mirror == "":
		return c.Name, c.Repo
	case strings.HasPrefix(mirror, "oci://"):
		return strings.TrimSuffix(mirror, "/") + "/" + c.Name, ""
	}
	return c.Name, mirror
}

// Release is c, from mirror, for a Helm Release (v3) resource.
func (c Chart) Release(mirror string) (pulumi.StringInput, helmv3.RepositoryOptsPtrInput) {
	chart, repo := c.Source(mirror)
	if repo == "" {
		return pulumi.String(chart), nil
	}
	return pulumi.String(chart), &helmv3.RepositoryOptsArgs{Repo: pulumi.String(repo)}
}

// ForChart is c, from mirror, for a Helm Chart (v4) resource.
func (c Chart) ForChart(mirror string) (pulumi.StringInput, helmv4.RepositoryOptsPtrInput) {
	chart, repo := c.Source(mirror)
	if repo == "" {
		return pulumi.String(chart), nil
	}
	return pulumi.String(chart), &helmv4.RepositoryOptsArgs{Repo: pulumi.String(repo)}
}
