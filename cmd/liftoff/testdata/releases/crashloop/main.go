// Command crashloop is a broken release for the e2e tests: it exits at
// start, as an app with a bad configuration does, so its pods crash-loop.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, `{"level":"ERROR","msg":"startup failed: required setting FEATURE_FLAGS_URL is missing (test release crashloop)"}`)
	os.Exit(1)
}
