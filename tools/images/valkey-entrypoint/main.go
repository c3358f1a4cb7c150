// Command valkey-entrypoint is the stand-in Valkey image's entrypoint: it
// runs Debian's redis-server (protocol-compatible) with the container's
// arguments, as the official image's docker-entrypoint.sh runs
// valkey-server: with protected mode off, since the image has no config
// file and the server is reached from other pods. liftoff's Valkey turns
// the default user off and requires user app's password (components/cache),
// which protected mode would not have given.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	args := append(append([]string{"redis-server"}, os.Args[1:]...), "--protected-mode", "no")
	if err := syscall.Exec("/usr/bin/redis-server", args, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "valkey-entrypoint:", err)
		os.Exit(1)
	}
}
