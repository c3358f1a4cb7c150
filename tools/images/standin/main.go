// Command standin assembles stand-in images from this machine's programs,
// for tests that cannot pull the official images. PostgreSQL and Valkey
// come from Debian's packages with an entrypoint of ours
// (../postgres-entrypoint, ../valkey-entrypoint, built here, static) that
// behaves as the official image's does, and the image's non-root user
// (uid 999, as upstream). The monitoring stack's images hold one program
// each at the official image's path, run as its entrypoint (as nobody):
// Alertmanager from Debian; Prometheus, the Prometheus operator and its
// config reloader from a binary built from their modules (../../prometheus,
// ../../monitoring), given as the third argument. metrics-server (for the
// autoscaling test), node_exporter and the OpenTelemetry Collector
// likewise, from ../../metrics-server, ../../node-exporter and
// ../../otelcol. Every
// image has its programs' shared libraries (ldd) and /etc/passwd and
// /etc/group. It writes a one-platform OCI layout.
//
//	go run ./standin postgres OUTDIR
//	go run ./standin valkey OUTDIR
//	go run ./standin alertmanager OUTDIR
//	go run ./standin prometheus-operator OUTDIR path/to/operator
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// image is what one stand-in holds.
type image struct {
	programs   []string          // ELF programs, with their libraries
	aliases    map[string]string // path in the image -> an ELF program of this machine
	trees      []string          // directories copied whole (data files, modules)
	skip       []string          // path fragments left out of trees
	entrypoint string            // the Go package of the entrypoint, under this module
	user       string            // the non-root user (uid and gid 999)
	home       string
	dirs       map[string]fs.FileMode // extra directories, owned by the user
	env        []string
	workdir    string
	stopSignal string // as upstream's STOPSIGNAL
	// command is the entrypoint when there is no entrypoint package: a
	// program of the image, run as nobody (65534).
	command []string
	// built is the path in the image of a program given on the command
	// line (a binary built from a module, not a Debian package).
	built string
}

var images = map[string]image{
	"postgres": {
		programs: []string{"/usr/lib/postgresql/15/bin/postgres", "/usr/lib/postgresql/15/bin/initdb", "/usr/lib/postgresql/15/bin/pg_isready",
			"/usr/lib/postgresql/15/bin/psql", "/usr/lib/postgresql/15/bin/pg_dump", "/usr/lib/postgresql/15/bin/pg_restore",
			// What the official image's shell has and liftoff's backup job uses.
			"/bin/cat", "/bin/date", "/bin/ls", "/bin/mkdir", "/bin/mv", "/bin/rm", "/bin/sleep", "/usr/bin/sort", "/usr/bin/tail", "/usr/bin/head", "/usr/bin/wc", "/usr/bin/sha256sum"},
		// initdb runs postgres through popen, which needs /bin/sh.
		aliases:    map[string]string{"/bin/sh": "/bin/dash"},
		trees:      []string{"/usr/lib/postgresql/15/lib", "/usr/share/postgresql/15", "/usr/share/zoneinfo"},
		skip:       []string{"/bitcode", "llvmjit"}, // JIT (and libLLVM) stays out: the entrypoint runs with jit=off
		entrypoint: "./postgres-entrypoint",
		user:       "postgres", home: "/var/lib/postgresql",
		dirs:    map[string]fs.FileMode{"/var/run/postgresql": 0o1777 | fs.ModeSticky, "/var/lib/postgresql": 0o755, "/tmp": 0o1777 | fs.ModeSticky},
		env:     []string{"PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/bin:/bin", "PGDATA=/var/lib/postgresql/data", "TZ=UTC", "LANG=C.UTF-8"},
		workdir: "/",
		// PostgreSQL's fast shutdown: connections are closed, not waited for.
		stopSignal: "SIGINT",
	},
	"valkey": {
		programs: []string{"/usr/bin/redis-server"},
		// The official image has the CLI too (tests reach the server with it).
		aliases:    map[string]string{"/usr/local/bin/valkey-cli": "/usr/bin/redis-cli"},
		entrypoint: "./valkey-entrypoint",
		user:       "valkey", home: "/data",
		dirs:    map[string]fs.FileMode{"/data": 0o777, "/tmp": 0o1777 | fs.ModeSticky},
		env:     []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		workdir: "/data",
	},
	// The monitoring stack's, at the paths of the official images (the
	// operator runs the config reloader as /bin/prometheus-config-reloader).
	"prometheus": {
		built: "/bin/prometheus", command: []string{"/bin/prometheus"},
		dirs:    map[string]fs.FileMode{"/prometheus": 0o777, "/etc/prometheus": 0o755},
		workdir: "/prometheus",
	},
	"alertmanager": {
		aliases: map[string]string{"/bin/alertmanager": "/usr/bin/prometheus-alertmanager"},
		// Its notification templates and UI, where Debian's build reads them.
		trees:   []string{"/usr/share/prometheus/alertmanager"},
		command: []string{"/bin/alertmanager"},
		dirs:    map[string]fs.FileMode{"/alertmanager": 0o777, "/etc/alertmanager": 0o755},
		workdir: "/alertmanager",
	},
	"prometheus-operator":        {built: "/bin/operator", command: []string{"/bin/operator"}},
	"prometheus-config-reloader": {built: "/bin/prometheus-config-reloader", command: []string{"/bin/prometheus-config-reloader"}},
	"metrics-server":             {built: "/metrics-server", command: []string{"/metrics-server"}},
	"node-exporter":              {built: "/bin/node_exporter", command: []string{"/bin/node_exporter"}},
	// At the contrib image's path: the chart runs the image's entrypoint.
	"otelcol": {built: "/otelcol-contrib", command: []string{"/otelcol-contrib"}},
}

func main() {
	var im image
	ok := len(os.Args) > 1
	if ok {
		im, ok = images[os.Args[1]]
	}
	want := 3
	if im.built != "" {
		want = 4
	}
	if !ok || len(os.Args) != want {
		fmt.Fprintln(os.Stderr, "usage: standin postgres|valkey|alertmanager OUTDIR\n       standin prometheus|prometheus-operator|prometheus-config-reloader|metrics-server|node-exporter|otelcol OUTDIR BINARY")
		os.Exit(2)
	}
	if im.built != "" {
		im.aliases = map[string]string{im.built: os.Args[3]}
	}
	if err := build(im, os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "standin %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func build(im image, out string) error {
	files := map[string]string{} // path in the image -> file on this machine
	for _, p := range im.programs {
		files[p] = p
		libs, err := sharedLibraries(p)
		if err != nil {
			return err
		}
		for _, l := range libs {
			files[l] = l
		}
	}
	for at, p := range im.aliases {
		files[at] = p
		libs, err := sharedLibraries(p)
		if err != nil {
			return err
		}
		for _, l := range libs {
			files[l] = l
		}
	}
	for _, t := range im.trees {
		err := filepath.WalkDir(t, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			for _, s := range im.skip {
				if strings.Contains(p, s) {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if st, err := os.Stat(p); err != nil || st.IsDir() {
					return nil // a link to a directory (zoneinfo/posix -> .): its files are there already
				}
			}
			if !d.IsDir() {
				files[p] = p
				if strings.HasSuffix(p, ".so") {
					libs, err := sharedLibraries(p)
					if err != nil {
						return err
					}
					for _, l := range libs {
						files[l] = l
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	entrypoint, user := im.command, "65534:65534"
	if im.entrypoint != "" {
		entry, err := compile(im.entrypoint)
		if err != nil {
			return err
		}
		defer os.Remove(entry)
		files["/usr/local/bin/docker-entrypoint"] = entry
		entrypoint, user = []string{"/usr/local/bin/docker-entrypoint"}, "999:999"
	}

	var buf bytes.Buffer
	if err := writeLayer(&buf, im, files); err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile() // keeps the layer's diff ID
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = runtime.GOARCH, "linux", v1.Time{Time: time.Unix(0, 0)}
	cf.Config = v1.Config{Entrypoint: entrypoint, Env: im.env, User: user, WorkingDir: im.workdir, StopSignal: im.stopSignal}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}})
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	_, err = layout.Write(out, idx)
	return err
}

// sharedLibraries lists what the dynamic loader maps for an ELF file, the
// loader itself included.
func sharedLibraries(path string) ([]string, error) {
	out, err := exec.Command("ldd", path).CombinedOutput()
	if err != nil && strings.Contains(string(out), "not a dynamic executable") {
		return nil, nil // static (a Go program built without cgo)
	}
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", path, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		case strings.Contains(line, "not found"):
			return nil, fmt.Errorf("ldd %s: %s", path, strings.TrimSpace(line))
		}
	}
	return libs, nil
}

// compile builds an entrypoint of this module as a static binary.
func compile(pkg string) (string, error) {
	f, err := os.CreateTemp("", "standin-entrypoint")
	if err != nil {
		return "", err
	}
	f.Close()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", f.Name(), pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	return f.Name(), cmd.Run()
}

// writeLayer writes the image's one layer: directories, files (symlinks
// followed: the image holds what they point at), the user's account.
func writeLayer(w io.Writer, im image, files map[string]string) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	var mkdir func(string) error
	mkdir = func(d string) error {
		if d == "/" || dirs[d] {
			return nil
		}
		if err := mkdir(filepath.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		mode, uid := int64(0o755), 0
		if m, ok := im.dirs[d]; ok {
			mode, uid = int64(m.Perm()), 999
			if im.user == "" {
				uid = 65534
			}
			if m&fs.ModeSticky != 0 {
				mode |= 0o1000
			}
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: epoch})
	}
	add := func(name string, mode int64, body []byte) error {
		if err := mkdir(filepath.Dir(name)); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(name, "/"), Mode: mode, Size: int64(len(body)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	var extra []string
	for d := range im.dirs {
		extra = append(extra, d)
	}
	sort.Strings(extra)
	for _, d := range extra {
		if err := mkdir(d); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(files[n])
		if err != nil {
			return err
		}
		st, err := os.Stat(files[n])
		if err != nil {
			return err
		}
		if err := add(n, int64(st.Mode().Perm()), b); err != nil {
			return err
		}
	}
	passwd := "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	group := "root:x:0:\nnogroup:x:65534:\n"
	if im.user != "" {
		passwd += fmt.Sprintf("%s:x:999:999:%s:%s:/usr/sbin/nologin\n", im.user, im.user, im.home)
		group += fmt.Sprintf("%s:x:999:\n", im.user)
	}
	if err := add("/etc/passwd", 0o644, []byte(passwd)); err != nil {
		return err
	}
	if err := add("/etc/group", 0o644, []byte(group)); err != nil {
		return err
	}
	return tw.Close()
}
