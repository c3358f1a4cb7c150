package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// PassphraseFile is the default passphrase location, created by liftoff init.
func PassphraseFile(home string) string { return filepath.Join(home, "passphrase") }

// privateTemp is <home>/tmp (mode 0700), with entries older than maxAge removed.
func privateTemp(home string, maxAge time.Duration) (string, error) {
	dir := filepath.Join(home, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", failure.New(failure.Config, fmt.Errorf("liftoff's temp directory %s: %w", dir, err), "make liftoff's home writable (LIFTOFF_HOME)")
	}
	os.Chmod(dir, 0o700)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > maxAge {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return dir, nil
}

func environment(o Options) (map[string]string, error) {
	env := map[string]string{
		"PULUMI_BACKEND_URL":       o.BackendURL(),
		"PULUMI_SKIP_UPDATE_CHECK": "true",
		"PULUMI_HOME":              filepath.Join(o.Home, "pulumi"),
	}
	if o.SecretsProvider != "" && o.SecretsProvider != "passphrase" {
		return env, nil
	}
	switch {
	case o.Getenv("LIFTOFF_PASSPHRASE") != "":
		env["PULUMI_CONFIG_PASSPHRASE"] = o.Getenv("LIFTOFF_PASSPHRASE")
	case o.Getenv("LIFTOFF_PASSPHRASE_FILE") != "":
		env["PULUMI_CONFIG_PASSPHRASE_FILE"] = o.Getenv("LIFTOFF_PASSPHRASE_FILE")
	case o.Getenv("PULUMI_CONFIG_PASSPHRASE") != "" || o.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") != "":
		// The user's own pulumi settings pass through.
	case isFile(PassphraseFile(o.Home)):
		env["PULUMI_CONFIG_PASSPHRASE_FILE"] = PassphraseFile(o.Home)
	default:
		return nil, failure.Newf(failure.Auth,
			"set LIFTOFF_PASSPHRASE or LIFTOFF_PASSPHRASE_FILE (liftoff init creates ~/.liftoff/passphrase on first use)",
			"no passphrase for the stack's secrets")
	}
	return env, nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
