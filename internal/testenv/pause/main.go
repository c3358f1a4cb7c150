// Command pause is the real test node's sandbox ("pause") image: the first
// process of every pod, which holds the pod's namespaces open. It sleeps,
// reaps the children that are re-parented to it, and exits on SIGINT or
// SIGTERM. Public registries cannot be reached here, so the project builds
// its own with `liftoff build` (make testcluster).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
