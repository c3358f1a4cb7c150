package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ErrNoStackFile means the stack has no Pulumi.<stack>.yaml in the project.
var ErrNoStackFile = errors.New("no stack file")

// StackFilePath is where a stack's settings live in a project directory.
func StackFilePath(dir, stack string) string {
	return filepath.Join(dir, "Pulumi."+stack+".yaml")
}

// ReadStackFile reads the config of a stack from its Pulumi.<stack>.yaml
// without the engine: secrets stay encrypted and are reported as set.
func ReadStackFile(dir, stack string) (Values, error) {
	path := StackFilePath(dir, stack)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoStackFile)
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	vals := Values{}
	for k, raw := range doc.Config {
		v, err := fileValue(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: key %s: %w", path, k, err)
		}
		vals[k] = v
	}
	return vals, nil
}

func fileValue(raw any) (Value, error) {
	switch x := raw.(type) {
	case nil:
		return Plain(""), nil
	case string:
		return Plain(x), nil
	case bool:
		return Plain(strconv.FormatBool(x)), nil
	case int:
		return Plain(strconv.Itoa(x)), nil
	case float64:
		return Plain(strconv.FormatFloat(x, 'f', -1, 64)), nil
	case map[string]any:
		if sec, ok := x["secure"]; ok && len(x) == 1 {
			if _, ok := sec.(string); ok {
				return Value{Secret: true}, nil
			}
		}
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return Value{}, err
	}
	return Plain(string(b)), nil
}

// ProjectName reads the project name from Pulumi.yaml in dir.
func ProjectName(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "Pulumi.yaml"))
	if err != nil {
		return "", err
	}
	var doc struct {
		Name string `yaml:"name"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("parse %s: %w", filepath.Join(dir, "Pulumi.yaml"), err)
	}
	if doc.Name == "" {
		return "", fmt.Errorf("%s has no name", filepath.Join(dir, "Pulumi.yaml"))
	}
	return doc.Name, nil
}
