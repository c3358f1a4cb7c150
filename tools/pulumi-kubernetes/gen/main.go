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
	"strings"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	version := flag.String("version", "", "version to stamp into the schema, e.g. 4.25.0")
	out := flag.String("out", ".", "directory to write schema-embed.json and terraform-mapping-embed.json to")
	flag.Parse()
	if *version == "" {
		log.Fatal("gen: -version is required")
	}
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/pulumi/pulumi-kubernetes/provider/v4").Output()
	if err != nil {
		log.Fatalf("gen: locate the provider module: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(dir)), "cmd", "pulumi-resource-kubernetes")

	var spec schema.PackageSpec
	read(filepath.Join(src, "schema.json"), &spec)
	spec.Version = *version
	write(filepath.Join(*out, "schema-embed.json"), spec)

	var mapping any
	read(filepath.Join(src, "terraform-mapping.json"), &mapping)
	write(filepath.Join(*out, "terraform-mapping-embed.json"), mapping)
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
