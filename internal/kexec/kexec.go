// Package kexec runs a command in a container through the API server, as
// kubectl exec does: WebSockets where the API server has them, SPDY
// otherwise.
package kexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// Options say what runs where, and with which streams.
type Options struct {
	Namespace, Pod, Container string
	Command                   []string
	Stdin                     io.Reader
	Stdout, Stderr            io.Writer
	TTY                       bool
	// Size, with TTY, reports the local terminal's size as it changes.
	Size remotecommand.TerminalSizeQueue
}

// Run runs the command, streaming its stdio, and returns its exit code. An
// error means the command could not be run (or ctx ended).
func Run(ctx context.Context, kube kubernetes.Interface, cfg *rest.Config, o Options) (int, error) {
	req := kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(o.Namespace).Name(o.Pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: o.Container, Command: o.Command,
			Stdin: o.Stdin != nil, Stdout: o.Stdout != nil, Stderr: o.Stderr != nil && !o.TTY, TTY: o.TTY}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(cfg, http.MethodPost, req.URL())
	if err != nil {
		return 0, fmt.Errorf("exec in pod %s: %w", o.Pod, err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(cfg, http.MethodGet, req.URL().String())
	if err != nil {
		return 0, fmt.Errorf("exec in pod %s: %w", o.Pod, err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return 0, fmt.Errorf("exec in pod %s: %w", o.Pod, err)
	}
	stderr := o.Stderr
	if o.TTY {
		stderr = nil
	}
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: stderr, Tty: o.TTY, TerminalSizeQueue: o.Size})
	var code utilexec.CodeExitError
	if errors.As(err, &code) {
		return code.Code, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("exec in pod %s: %w", o.Pod, err)
	}
	return 0, nil
}
