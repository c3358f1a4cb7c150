package testenv

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"golang.org/x/net/dns/dnsmessage"
)

// clusterDNS is the local cluster's DNS: it answers the real node's pods for
// <service>.<namespace>.svc.cluster.local (the ClusterIP, or the ready
// endpoints of a headless Service) and <host>.<service>.<namespace>.svc...
// (a StatefulSet's pod), read from the API server, and NXDOMAIN for every
// other name: pods never resolve a name outside the cluster, so nothing they
// look up leaves the machine. A cluster a user runs has CoreDNS for this.
type clusterDNS struct {
	udp    net.PacketConn
	tcp    net.Listener
	client kubernetes.Interface
}

const clusterDomain = "cluster.local."

// startClusterDNS serves DNS on ip:53 (UDP and TCP).
func startClusterDNS(ip string, client kubernetes.Interface) (*clusterDNS, error) {
	addr := net.JoinHostPort(ip, "53")
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		udp.Close()
		return nil, err
	}
	d := &clusterDNS{udp: udp, tcp: tcp, client: client}
	go d.serveUDP()
	go d.serveTCP()
	return d, nil
}

func (d *clusterDNS) Close() {
	d.udp.Close()
	d.tcp.Close()
}

func (d *clusterDNS) serveUDP() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		q := append([]byte(nil), buf[:n]...)
		go func() {
			if out := d.answer(q); out != nil {
				d.udp.WriteTo(out, from)
			}
		}()
	}
}

func (d *clusterDNS) serveTCP() {
	for {
		c, err := d.tcp.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				out := d.answer(q)
				if out == nil {
					return
				}
				c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(out))))
				c.Write(out)
			}
		}()
	}
}

// answer builds the response to one query message (nil: drop it).
func (d *clusterDNS) answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	resp := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RCode: dnsmessage.RCodeSuccess}
	ips, found := d.lookup(q.Name.String())
	if !found {
		resp.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, resp)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		for _, ip := range ips {
			var a [4]byte
			copy(a[:], ip.To4())
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}, dnsmessage.AResource{A: a})
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// lookup resolves a name in the cluster domain; found is false for a name
// that does not exist (and for every name outside the domain).
func (d *clusterDNS) lookup(name string) (ips []net.IP, found bool) {
	rest, ok := strings.CutSuffix(strings.ToLower(name), "."+clusterDomain)
	if !ok {
		return nil, false
	}
	labels := strings.Split(rest, ".")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	switch {
	case len(labels) == 3 && labels[2] == "svc":
		return d.service(ctx, labels[1], labels[0], "")
	case len(labels) == 4 && labels[3] == "svc":
		return d.service(ctx, labels[2], labels[1], labels[0])
	}
	return nil, false
}

func (d *clusterDNS) service(ctx context.Context, ns, name, host string) ([]net.IP, bool) {
	svc, err := d.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, false
	}
	if host == "" && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != "None" {
		return []net.IP{net.ParseIP(svc.Spec.ClusterIP)}, true
	}
	ips, err := d.endpoints(ctx, ns, name, host)
	if err != nil || (host != "" && len(ips) == 0) {
		return nil, false
	}
	return ips, true
}

// endpoints are the ready addresses of a Service (of one host, when given).
func (d *clusterDNS) endpoints(ctx context.Context, ns, svc, host string) ([]net.IP, error) {
	slices, err := d.client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, s := range slices.Items {
		for _, e := range s.Endpoints {
			if host != "" && (e.Hostname == nil || *e.Hostname != host) {
				continue
			}
			if host == "" && e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				if ip := net.ParseIP(a); ip != nil && ip.To4() != nil {
					ips = append(ips, ip)
				}
			}
		}
	}
	if len(ips) == 0 && host == "" {
		return nil, errors.New("no ready endpoints")
	}
	return ips, nil
}
