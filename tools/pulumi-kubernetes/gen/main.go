// Command gen writes the files the provider's main embeds, as upstream's
// generate.go does: the schema with its version stamped, and the terraform
// mapping, both compact, read from the provider module's own directory.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	version := flag.String("version", "", "version to stamp into the schema, e.g. 4.25.0")
	out := flag.String("out", ".", "directory to write schema-embed.json and terraform-mapping-embed.json to")
	flag.Parse()
	if *version == "" {
		log.Fatal("gen: -version is required")
	}
	src := filepath.Join(moduleDir("github.com/pulumi/pulumi-kubernetes/provider/v4"), "cmd", "pulumi-resource-kubernetes")

	var spec schema.PackageSpec
	read(filepath.Join(src, "schema.json"), &spec)
	spec.Version = *version
	write(filepath.Join(*out, "schema-embed.json"), spec)

	var mapping any
	read(filepath.Join(src, "terraform-mapping.json"), &mapping)
	write(filepath.Join(*out, "terraform-mapping-embed.json"), mapping)
}

// moduleDir is the folder of a module in this module's build list. It asks
// `go mod download`, which fetches the module when the cache lacks it: `go
// list -m` answers an empty folder on a cold module cache, and gen imports
// nothing of the provider that would make `go run` fetch it.
func moduleDir(path string) string {
	out, err := exec.Command("go", "mod", "download", "-json", path).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			log.Fatalf("gen: download %s: %v\n%s", path, err, ee.Stderr)
		}
		log.Fatalf("gen: download %s: %v", path, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		log.Fatalf("gen: download %s: %v", path, err)
	}
	if m.Error != "" || m.Dir == "" {
		log.Fatalf("gen: download %s: no folder (%s)", path, m.Error)
	}
	return m.Dir
}

func read(path string, v any) {
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatalf("gen: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		log.Fatalf("gen: decode %s: %v", path, err)
	}
}

func write(path string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatalf("gen: encode %s: %v", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatalf("gen: %v", err)
	}
}
