// Command registry stands in for the official registry image (CNCF
// distribution 2.8) in tests: distribution's registry with the configuration
// that image ships as /etc/docker/registry/config.yml built in, overridden
// by the same REGISTRY_* variables (REGISTRY_AUTH=htpasswd, ...), listening
// on :5000 and storing under /var/lib/registry.
package main

import (
	"context"
	"log"
	"strings"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// imageConfig is the official image's config.yml.
const imageConfig = `version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
`

func main() {
	cfg, err := configuration.Parse(strings.NewReader(imageConfig))
	if err != nil {
		log.Fatalf("registry configuration: %v", err)
	}
	reg, err := registry.NewRegistry(context.Background(), cfg)
	if err != nil {
		log.Fatalf("registry: %v", err)
	}
	log.Fatal(reg.ListenAndServe())
}
