package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kubeletSysctls are the machine-wide settings kubelet changes once when it
// starts (vm.overcommit_memory 0->1, kernel.panic 1->10,
// kernel.panic_on_oops 0->1). They are saved before it starts and put back
// once the node is Ready: kubelet does not check them again.
var kubeletSysctls = []string{"vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"}

// sysctlSaved is where the values wait while a kubelet starts, so that if the
// process dies in that window the next node to start puts them back.
var sysctlSaved = filepath.Join(stateDir, "sysctl.saved")

func readSysctls() (map[string]string, error) {
	vals := map[string]string{}
	for _, k := range kubeletSysctls {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			return nil, err
		}
		vals[k] = strings.TrimSpace(string(b))
	}
	return vals, nil
}

func writeSysctls(vals map[string]string) error {
	var errs []error
	for k, v := range vals {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore %s=%s: %w", strings.ReplaceAll(k, "/", "."), v, err))
		}
	}
	return errors.Join(errs...)
}

// saveSysctls records the current values (after restoring any that a dead
// process left saved); the caller holds machineLock.
func saveSysctls() (map[string]string, error) {
	if err := restoreSavedSysctls(); err != nil {
		return nil, err
	}
	vals, err := readSysctls()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(vals)
	return vals, os.WriteFile(sysctlSaved, b, 0o644)
}

// restoreSavedSysctls puts back what a dead process saved and never restored.
func restoreSavedSysctls() error {
	b, err := os.ReadFile(sysctlSaved)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var vals map[string]string
	if err := json.Unmarshal(b, &vals); err != nil {
		return os.Remove(sysctlSaved)
	}
	if err := writeSysctls(vals); err != nil {
		return err
	}
	return os.Remove(sysctlSaved)
}

// sharedPaths are used by kubelet, containerd and the CNI plugins whatever
// their configuration says. The first node in records which did not exist;
// the last one out removes those.
var sharedPaths = []string{"/var/lib/kubelet", "/var/lib/cni", "/var/log/containers", "/run/containerd", "/var/log/pods"}

var sharedCreated = filepath.Join(stateDir, "created")

// noteSharedPaths records, when no other node runs, which shared paths are
// missing (and so ours to remove later); the caller holds machineLock.
func noteSharedPaths(firstIn bool) error {
	if !firstIn {
		return nil
	}
	if _, err := os.Stat(sharedCreated); err == nil {
		return nil // a node that died left it: its list still holds
	}
	var missing []string
	for _, p := range sharedPaths {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, p)
		}
	}
	return os.WriteFile(sharedCreated, []byte(strings.Join(missing, "\n")), 0o644)
}

// removeSharedPaths removes the shared paths nodes created; the caller holds
// machineLock and no other node runs.
func removeSharedPaths() error {
	b, err := os.ReadFile(sharedCreated)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range strings.Split(string(b), "\n") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.Remove(sharedCreated)
}
