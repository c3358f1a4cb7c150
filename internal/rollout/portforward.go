package rollout

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// PortForward forwards a free loopback port to a ready pod behind a Service
// ("namespace/service:port"), through the API server, like kubectl
// port-forward. It returns the local address and a stop function.
func PortForward(ctx context.Context, cfg *rest.Config, target string) (string, func(), error) {
	ns, rest, ok := strings.Cut(target, "/")
	svc, portS, ok2 := strings.Cut(rest, ":")
	port, err := strconv.Atoi(portS)
	if !ok || !ok2 || err != nil {
		return "", nil, fmt.Errorf("port-forward target %q is not namespace/service:port", target)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", nil, err
	}
	slices, err := kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return "", nil, fmt.Errorf("endpoints of %s/%s: %w", ns, svc, err)
	}
	pod := ""
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if e.TargetRef != nil && e.TargetRef.Kind == "Pod" && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				pod = e.TargetRef.Name
			}
		}
	}
	if pod == "" {
		return "", nil, fmt.Errorf("no ready pod behind %s/%s to forward to", ns, svc)
	}
	// A Service port maps to the pod's target port (by number or by name).
	if s, err := kube.CoreV1().Services(ns).Get(ctx, svc, metav1.GetOptions{}); err == nil {
		for _, sp := range s.Spec.Ports {
			if int(sp.Port) != port {
				continue
			}
			if sp.TargetPort.IntValue() > 0 {
				port = sp.TargetPort.IntValue()
			} else if name := sp.TargetPort.String(); name != "" {
				if p, err := kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{}); err == nil {
					for _, c := range p.Spec.Containers {
						for _, cp := range c.Ports {
							if cp.Name == name {
								port = int(cp.ContainerPort)
							}
						}
					}
				}
			}
		}
	}
	tr, up, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return "", nil, err
	}
	u, err := url.Parse(strings.TrimSuffix(cfg.Host, "/") + fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/portforward", ns, pod))
	if err != nil {
		return "", nil, err
	}
	dialer := spdy.NewDialer(up, &http.Client{Transport: tr}, http.MethodPost, u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return "", nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		return "", nil, fmt.Errorf("port-forward to %s/%s: %w", ns, pod, err)
	case <-ctx.Done():
		close(stop)
		return "", nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		close(stop)
		return "", nil, fmt.Errorf("port-forward to %s/%s: no local port", ns, pod)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0].Local), func() { close(stop) }, nil
}
