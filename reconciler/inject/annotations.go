package inject

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/gitmesh/gitmesh/internal/capture"
	"github.com/gitmesh/gitmesh/internal/proxyports"
)

// Pod annotations that narrow the capture, passed to `gitmesh capture`
// as the flags of the same names (Istio's traffic.sidecar.istio.io/
// excludeInboundPorts and friends). The usual reason: with STRICT mTLS
// the kubelet's probes cannot pass Envoy's inbound listener, so a pod
// serves its probes on a port of their own and excludes it.
const (
	ExcludeInboundPortsAnnotation  = "gitmesh.io/exclude-inbound-ports"
	ExcludeOutboundPortsAnnotation = "gitmesh.io/exclude-outbound-ports"
	ExcludeOutboundCIDRsAnnotation = "gitmesh.io/exclude-outbound-cidrs"
)

// ErrInvalid marks a pod the injector refuses because an annotation meant
// for it is malformed: injecting without it would silently capture what
// the pod asked to exclude.
var ErrInvalid = errors.New("invalid pod")

// captureArgs returns the capture flags the pod's annotations ask for, in
// a fixed order, or an ErrInvalid error naming the bad annotation.
func captureArgs(pod *corev1.Pod) ([]string, error) {
	var args []string
	for _, a := range []struct{ key, flag string }{
		{ExcludeInboundPortsAnnotation, "--exclude-inbound-ports"},
		{ExcludeOutboundPortsAnnotation, "--exclude-outbound-ports"},
	} {
		v, ok := pod.Annotations[a.key]
		if !ok {
			continue
		}
		ports, err := parsePorts(v)
		if err != nil {
			return nil, fmt.Errorf("%w: annotation %s: %w", ErrInvalid, a.key, err)
		}
		if len(ports) > 0 {
			args = append(args, a.flag, strings.Join(ports, ","))
		}
	}
	if v, ok := pod.Annotations[ExcludeOutboundCIDRsAnnotation]; ok {
		cidrs, err := parseCIDRs(v)
		if err != nil {
			return nil, fmt.Errorf("%w: annotation %s: %w", ErrInvalid, ExcludeOutboundCIDRsAnnotation, err)
		}
		if len(cidrs) > 0 {
			args = append(args, "--exclude-outbound-cidrs", strings.Join(cidrs, ","))
		}
	}
	return args, nil
}

func parsePorts(s string) ([]string, error) {
	var out []string
	for _, item := range capture.ListItems(s) {
		n, err := capture.ParsePort(item)
		if err != nil {
			return nil, err
		}
		if slices.Contains(proxyports.Reserved(), n) {
			return nil, fmt.Errorf("port %d is the proxy's own (reserved: %v)", n, proxyports.Reserved())
		}
		out = append(out, strconv.Itoa(n))
	}
	return out, nil
}

func parseCIDRs(s string) ([]string, error) {
	var out []string
	for _, item := range capture.ListItems(s) {
		p, err := capture.ParseCIDR(item)
		if err != nil {
			return nil, err
		}
		out = append(out, p.String())
	}
	return out, nil
}
