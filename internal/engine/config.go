package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// ConfigEntry is one config value to store.
type ConfigEntry struct {
	Value  string
	Secret bool
	// Object marks Value as the JSON of a list or object, stored structured.
	Object bool
}

// SetConfig stores one config value; path treats key as a property path
// ("liftoff:nodes[0].host"). Secrets reach the CLI on stdin, never in its
// arguments, where other users of the machine could read them.
func (s *Stack) SetConfig(ctx context.Context, key string, e ConfigEntry, path bool) error {
	if e.Object {
		return s.SetConfigs(ctx, map[string]ConfigEntry{key: e})
	}
	args := []string{"config", "set", "--stack", s.name}
	if path {
		args = append(args, "--path")
	}
	if e.Secret {
		return s.run(ctx, strings.NewReader(e.Value), append(args, key, "--secret")...)
	}
	return s.run(ctx, nil, append(args, key, "--plaintext", "--", e.Value)...)
}

// SetConfigs stores several values: plain ones in one call, objects as JSON,
// secrets one by one on stdin.
func (s *Stack) SetConfigs(ctx context.Context, entries map[string]ConfigEntry) error {
	plain := []string{"config", "set-all", "--stack", s.name}
	objects := map[string]any{}
	for k, e := range entries {
		switch {
		case e.Secret:
			if err := s.SetConfig(ctx, k, ConfigEntry{Value: e.Value, Secret: true}, false); err != nil {
				return err
			}
		case e.Object:
			var v any
			if err := json.Unmarshal([]byte(e.Value), &v); err != nil {
				return failure.Newf(failure.Config, "pass a JSON list or object", "config %s: %v", k, err)
			}
			objects[k] = map[string]any{"value": e.Value, "objectValue": v, "secret": false}
		default:
			plain = append(plain, "--plaintext", k+"="+e.Value)
		}
	}
	if len(plain) > 4 {
		if err := s.run(ctx, nil, plain...); err != nil {
			return err
		}
	}
	if len(objects) > 0 {
		b, _ := json.Marshal(objects)
		return s.run(ctx, nil, "config", "set-all", "--stack", s.name, "--json", string(b))
	}
	return nil
}

// run invokes the pulumi CLI directly in the project directory.
func (s *Stack) run(ctx context.Context, stdin io.Reader, args ...string) error {
	env := make([]string, 0, len(s.e.env))
	for k, v := range s.e.env {
		env = append(env, k+"="+v)
	}
	stdout, stderr, code, err := s.e.cmd.Run(ctx, s.e.o.Dir, stdin, nil, nil, env, args...)
	if err != nil {
		return classify(fmt.Errorf("pulumi %s: %w\ncode: %d\nstdout: %s\nstderr: %s", strings.Join(args[:2], " "), err, code, stdout, stderr))
	}
	return nil
}

// GetConfig reads one config value, decrypting secrets.
func (s *Stack) GetConfig(ctx context.Context, key string, path bool) (string, bool, error) {
	v, err := s.st.GetConfigWithOptions(ctx, key, &auto.ConfigOptions{Path: path})
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return "", false, failure.Newf(failure.NotFound, "list keys with liftoff config get", "config key %s is not set on stack %s", key, s.name)
		}
		return "", false, classify(fmt.Errorf("get config %s: %w", key, err))
	}
	return v.Value, v.Secret, nil
}

// AllConfig reads every config value, decrypting secrets.
func (s *Stack) AllConfig(ctx context.Context) (map[string]auto.ConfigValue, error) {
	m, err := s.st.GetAllConfig(ctx)
	return m, classify(wrap("read config", err))
}

// RemoveConfig deletes one config key.
func (s *Stack) RemoveConfig(ctx context.Context, key string, path bool) error {
	return classify(wrap("remove config "+key, s.st.RemoveConfigWithOptions(ctx, key, &auto.ConfigOptions{Path: path})))
}

// SetTag sets a stack tag (previews carry their parent and expiry this way).
func (s *Stack) SetTag(ctx context.Context, key, value string) error {
	return classify(wrap("set tag "+key, s.st.SetTag(ctx, key, value)))
}

// Tags returns the stack's user tags.
func (s *Stack) Tags(ctx context.Context) (map[string]string, error) {
	t, err := s.st.ListTags(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("list tags: %w", err))
	}
	return userTags(t), nil
}
