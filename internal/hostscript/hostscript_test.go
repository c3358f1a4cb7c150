package hostscript

import (
	"strings"
	"testing"
)

func TestStdin(t *testing.T) {
	got := Stdin(SudoLine("pi", "pw"), map[string]string{"B": "it's", "A": "x y"}, "echo hi\n")
	if want := "pw\nexport A='x y'\nexport B='it'\\''s'\necho hi\n"; got != want {
		t.Errorf("stdin %q, want %q", got, want)
	}
	// root runs bash directly: a password line would be executed as a command.
	if s := Stdin(SudoLine("root", "pw"), nil, "true\n"); strings.Contains(s, "pw") {
		t.Errorf("root stdin %q carries the sudo password", s)
	}
	for user, want := range map[string]string{"root": "bash -s", "pi": "sudo -n bash -s"} {
		if got := Shell(user, false); got != want {
			t.Errorf("Shell(%s) = %q", user, got)
		}
	}
	if got := Shell("pi", true); got != "sudo -S -p '' bash -s" {
		t.Errorf("Shell with password %q", got)
	}
}
