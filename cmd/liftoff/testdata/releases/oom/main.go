// Command oom is a broken release for the e2e tests: it holds ever more
// memory until the kernel kills it for going over its limit (OOMKilled).
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	var held [][]byte
	for i := 1; ; i++ {
		b := make([]byte, 16<<20)
		for j := range b { // touch every page, so the memory is really used
			b[j] = byte(j)
		}
		held = append(held, b)
		fmt.Fprintf(os.Stderr, "loaded %d MiB of the catalogue into memory (test release oom)\n", i*16)
		time.Sleep(20 * time.Millisecond)
	}
}
