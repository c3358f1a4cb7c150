package main

import (
	"os"
	"testing"
)

// TestMain lets a test run this binary as the liftoff CLI itself
// (LIFTOFF_TEST_MAIN=1), for runs a test must kill like a user would.
func TestMain(m *testing.M) {
	if os.Getenv("LIFTOFF_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}
