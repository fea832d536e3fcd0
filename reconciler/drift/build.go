package drift

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Finding codes. They are stable: CODES.md documents each one.
const (
	CodeNacked             = "GM2001"
	CodeStale              = "GM2002"
	CodeUndeclaredProxy    = "GM2003"
	CodeProxyRefused       = "GM2004"
	CodeNoEndpoints        = "GM2005"
	CodeUndeclaredService  = "GM2006"
	CodePortMismatch       = "GM2007"
	CodeKubeServiceMissing = "GM2008"
	CodeCertificate        = "GM2009"
	CodeRevisionNotServed  = "GM2010"
	CodeKubeUnreachable    = "GM2011"
	CodeUninjectedPod      = "GM2012"
	CodeTruncated          = "GM2099"
)

// Defaults for Input's durations.
const (
	DefaultStaleAfter      = 30 * time.Second
	DefaultExpiryWarning   = 7 * 24 * time.Hour
	DefaultRejectionWindow = 10 * time.Minute
	// maxPerCode bounds a report when a whole fleet shares one problem: the
	// first maxPerCode findings are listed, the rest counted in one GM2099.
	maxPerCode = 100
)

// Input is everything Build looks at. It is plain data gathered by the
// caller, so Build is pure and tests need no servers.
type Input struct {
	Now time.Time
	// Mesh is the served mesh; nil when it is not known (serving a state
	// restored from disk), which skips the checks that need it.
	Mesh     *model.Mesh
	Revision Revision
	// Proxies and Rejections are the xDS server's view.
	Proxies    []apiv1.Proxy
	Rejections []apiv1.Rejection
	// Endpoints are the discovered endpoints render used, keyed
	// "SERVICE/VERSION"; a key present overrides the version's static ones.
	Endpoints map[string][]model.Endpoint
	// Kubernetes is nil when Kubernetes discovery is off.
	Kubernetes   *Kubernetes
	Certificates []Certificate
	// StaleAfter is the grace period before an un-ACKed response counts as
	// stale; ExpiryWarning how early certificates are reported;
	// RejectionWindow how long a refused stream stays reported. Zero means
	// the defaults above.
	StaleAfter, ExpiryWarning, RejectionWindow time.Duration
	// Uninjected are pods the sidecar injector admitted without a sidecar
	// because they name no declared service or version (this replica's
	// admissions, recent ones only).
	Uninjected []UninjectedPod
}

// UninjectedPod is one pod (or a controller's pods, by generateName)
// admitted without a sidecar in an opted-in namespace.
type UninjectedPod struct {
	Namespace string
	// Pod is the pod's name, or its generateName followed by "*".
	Pod    string
	Reason string
	At     time.Time
}

// Kubernetes is what discovery saw.
type Kubernetes struct {
	Reachable        bool
	Error            string
	UnreachableSince time.Time
	// Namespaces watched; empty means all.
	Namespaces []string
	Services   []KubeService
}

// KubeService is one Kubernetes Service.
type KubeService struct {
	Namespace, Name string
	Ports           []KubePort
	ReadyEndpoints  int
}

// KubePort is one port of a Kubernetes Service; TargetPort is a number or
// a port name, as written.
type KubePort struct {
	Name       string
	Port       int
	TargetPort string
	Protocol   string
}

// Certificate is one certificate the control plane serves or signs with.
type Certificate struct {
	// Kind is "root", "intermediate", "workload" or "gateway".
	Kind     string
	Name     string
	NotAfter time.Time
	// RenewError is set when renewing it failed.
	RenewError string
}

// Build returns the findings for in, unsorted and without first-seen times
// (a Tracker adds those).
func Build(in Input) []Finding {
	if in.StaleAfter <= 0 {
		in.StaleAfter = DefaultStaleAfter
	}
	if in.ExpiryWarning <= 0 {
		in.ExpiryWarning = DefaultExpiryWarning
	}
	if in.RejectionWindow <= 0 {
		in.RejectionWindow = DefaultRejectionWindow
	}
	var fs []Finding
	fs = append(fs, proxyFindings(in)...)
	fs = append(fs, rejectionFindings(in)...)
	if in.Mesh != nil {
		fs = append(fs, endpointFindings(in)...)
	}
	if in.Kubernetes != nil {
		fs = append(fs, kubeFindings(in)...)
	}
	fs = append(fs, certificateFindings(in)...)
	for _, p := range in.Uninjected {
		fs = append(fs, Finding{Code: CodeUninjectedPod, Severity: SeverityWarning,
			Objects: []string{"pod/" + objectName(p.Namespace+"/"+p.Pod)},
			Message: fmt.Sprintf("pod %s/%s runs without a sidecar: %s", objectName(p.Namespace), objectName(p.Pod), oneLine(p.Reason, 300))})
	}
	if in.Revision.Newest != "" && in.Revision.Newest != in.Revision.Served {
		fs = append(fs, Finding{Code: CodeRevisionNotServed, Severity: SeverityWarning,
			Objects: []string{"revision/" + source.ShortID(in.Revision.Newest)},
			Message: fmt.Sprintf("newest revision %s is not served (serving %s): %s",
				source.ShortID(in.Revision.Newest), orNone(source.ShortID(in.Revision.Served)), oneLine(in.Revision.NewestStatus, 300))})
	}
	return capPerCode(fs)
}

// typeName is the short name of an xDS type URL, as operators say it.
func typeName(typeURL string) string {
	switch {
	case strings.HasSuffix(typeURL, ".Listener"):
		return "listeners"
	case strings.HasSuffix(typeURL, ".Cluster"):
		return "clusters"
	case strings.HasSuffix(typeURL, ".RouteConfiguration"):
		return "routes"
	case strings.HasSuffix(typeURL, ".ClusterLoadAssignment"):
		return "endpoints"
	case strings.HasSuffix(typeURL, ".Secret"):
		return "secrets"
	}
	return typeURL[strings.LastIndexByte(typeURL, '.')+1:]
}

// proxyFindings reports NACKs and responses left un-ACKed past the grace
// period. A proxy with several streams is reported once per type.
func proxyFindings(in Input) []Finding {
	var fs []Finding
	seen := map[string]bool{}
	for _, p := range in.Proxies {
		for _, t := range p.Types {
			var f Finding
			switch {
			case t.Status == apiv1.Nacked && t.LastNack != nil:
				f = Finding{Code: CodeNacked, Severity: SeverityError,
					Message: fmt.Sprintf("%s NACKed %s of revision %s: %s", objectName(p.NodeID), objectName(typeName(t.TypeURL)),
						orNone(source.ShortID(t.LastNack.Revision)), oneLine(t.LastNack.Error, 300))}
			case t.Status == apiv1.Stale && !t.SentAt.IsZero() && in.Now.Sub(t.SentAt) > in.StaleAfter:
				f = Finding{Code: CodeStale, Severity: SeverityWarning,
					Message: fmt.Sprintf("%s has not ACKed %s of revision %s within %s", objectName(p.NodeID), objectName(typeName(t.TypeURL)),
						orNone(source.ShortID(t.SentRevision)), in.StaleAfter)}
			default:
				continue
			}
			f.Objects = []string{"proxy/" + objectName(p.NodeID), "type/" + objectName(typeName(t.TypeURL))}
			if k := f.key(); !seen[k] {
				seen[k] = true
				fs = append(fs, f)
			}
		}
	}
	return fs
}

// rejectionFindings reports connections and streams refused recently:
// node ids that name no class of the mesh, peers whose certificate is not
// the identity of the class they ask for, requests over the server's
// limits, and TLS handshakes that failed (plaintext, no certificate,
// another CA's). A peer without a node id is named by its host, without
// the ephemeral port, so its finding is one across reconnects.
func rejectionFindings(in Input) []Finding {
	var fs []Finding
	seen := map[string]bool{}
	connected := map[string]bool{}
	for _, p := range in.Proxies {
		connected[p.NodeID] = true
	}
	for _, r := range in.Rejections {
		if in.Now.Sub(r.At) > in.RejectionWindow || connected[r.NodeID] && r.NodeID != "" {
			continue
		}
		who, obj := objectName(r.NodeID), "proxy/"+objectName(r.NodeID)
		if r.NodeID == "" {
			host := objectName(peerHost(r.Peer))
			who, obj = "peer "+host, "peer/"+host
		}
		f := Finding{Objects: []string{obj}}
		switch {
		case r.Code == codes.Unavailable.String():
			continue // nothing served yet: not drift, a start-up
		case r.Reason == apiv1.ReasonTLSClosed:
			continue // a TCP probe or port scan closing at once: not a proxy
		case r.Code == codes.Unauthenticated.String():
			f.Code, f.Severity = CodeProxyRefused, SeverityWarning
			f.Message = fmt.Sprintf("%s was refused at the TLS handshake (%s): %s", who, objectName(r.Reason), oneLine(r.Error, 300))
		case r.Code == codes.PermissionDenied.String():
			f.Code, f.Severity = CodeProxyRefused, SeverityError
			f.Message = fmt.Sprintf("%s was refused: %s", who, oneLine(r.Error, 300))
		case r.Reason == apiv1.ReasonLimit || r.Code == codes.ResourceExhausted.String():
			f.Code, f.Severity = CodeProxyRefused, SeverityWarning
			f.Message = fmt.Sprintf("%s was refused: %s", who, oneLine(r.Error, 300))
		case r.Code == codes.NotFound.String():
			// The server's text names the revision and counts classes;
			// both move without the proxy changing, so say it plainly.
			class := r.NodeID
			if c, _, err := nodeid.Parse(r.NodeID); err == nil {
				class = c.Name
			}
			f.Code, f.Severity = CodeUndeclaredProxy, SeverityWarning
			f.Message = fmt.Sprintf("%s is connecting but the mesh declares no proxy class %q", who, objectName(class))
		default:
			f.Code, f.Severity = CodeUndeclaredProxy, SeverityWarning
			f.Message = fmt.Sprintf("%s is connecting but the mesh does not declare it: %s", who, oneLine(r.Error, 300))
		}
		if k := f.key(); !seen[k] {
			seen[k] = true
			fs = append(fs, f)
		}
	}
	return fs
}

// maxObjectName bounds a peer-supplied name (node id, host, type) in a
// finding. The xDS server already bounds what it keeps; Build is plain
// data in, so it bounds again rather than trust its caller.
const maxObjectName = 256

func objectName(s string) string { return oneLine(s, maxObjectName) }

// peerHost is a peer address without its port.
func peerHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// endpointFindings reports declared services with no ready endpoints: the
// whole service (error: nothing can reach it) or some versions (warning).
func endpointFindings(in Input) []Finding {
	var fs []Finding
	for _, name := range in.Mesh.ServiceNames() {
		s := in.Mesh.Services[name]
		if len(s.Ports) == 0 || len(s.Versions) == 0 {
			continue // a pure client: nothing calls it
		}
		var empty []string
		for _, v := range s.VersionNames() {
			eps, ok := in.Endpoints[name+"/"+v]
			if !ok {
				eps = s.Versions[v].Endpoints
			}
			if len(eps) == 0 {
				empty = append(empty, v)
			}
		}
		obj := "service/" + s.Namespace + "/" + name
		switch {
		case len(empty) == 0:
		case len(empty) == len(s.Versions):
			fs = append(fs, Finding{Code: CodeNoEndpoints, Severity: SeverityError, Objects: []string{obj},
				Message: fmt.Sprintf("service %s has no ready endpoints (%s discovery)", name, s.Discovery)})
		default:
			for _, v := range empty {
				fs = append(fs, Finding{Code: CodeNoEndpoints, Severity: SeverityWarning, Objects: []string{obj, "version/" + v},
					Message: fmt.Sprintf("version %s of service %s has no ready endpoints (%s discovery)", v, name, s.Discovery)})
			}
		}
	}
	return fs
}

// kubeFindings compares Kubernetes Services with the mesh: Services Git
// does not declare, declared ones missing, and ports that disagree.
func kubeFindings(in Input) []Finding {
	k := in.Kubernetes
	var fs []Finding
	if !k.Reachable {
		since := ""
		if !k.UnreachableSince.IsZero() {
			since = " since " + k.UnreachableSince.UTC().Format(time.RFC3339)
		}
		fs = append(fs, Finding{Code: CodeKubeUnreachable, Severity: SeverityError, Objects: []string{"kubernetes/api"},
			Message: fmt.Sprintf("Kubernetes API unreachable%s, serving the last known endpoints: %s", since, oneLine(k.Error, 300))})
	}
	if in.Mesh == nil {
		return fs
	}
	type nsName struct{ ns, name string }
	kube := map[nsName]KubeService{}
	for _, s := range k.Services {
		kube[nsName{s.Namespace, s.Name}] = s
	}
	declared := map[nsName]bool{}
	for _, name := range in.Mesh.ServiceNames() {
		s := in.Mesh.Services[name]
		key := nsName{s.Namespace, name}
		declared[key] = true
		if s.Discovery != "kubernetes" || !watched(k.Namespaces, s.Namespace) {
			continue
		}
		obj := "service/" + s.Namespace + "/" + name
		ks, ok := kube[key]
		if !ok {
			fs = append(fs, Finding{Code: CodeKubeServiceMissing, Severity: SeverityWarning, Objects: []string{obj},
				Message: fmt.Sprintf("service %s uses Kubernetes discovery but Kubernetes has no Service %s/%s", name, s.Namespace, name)})
			continue
		}
		fs = append(fs, portFindings(s, ks, obj)...)
	}
	for _, s := range k.Services {
		key := nsName{s.Namespace, s.Name}
		if declared[key] || (s.Namespace == "default" && s.Name == "kubernetes") {
			continue
		}
		fs = append(fs, Finding{Code: CodeUndeclaredService, Severity: SeverityWarning,
			Objects: []string{"kubernetes/service/" + s.Namespace + "/" + s.Name},
			Message: fmt.Sprintf("Kubernetes Service %s/%s (%d ready endpoints) is not declared in Git", s.Namespace, s.Name, s.ReadyEndpoints)})
	}
	return fs
}

// portFindings compares one service's ports, matched by name, with its
// Kubernetes Service's.
func portFindings(s *model.Service, ks KubeService, obj string) []Finding {
	var fs []Finding
	byName := map[string]KubePort{}
	for _, p := range ks.Ports {
		byName[p.Name] = p
	}
	for _, p := range s.Ports {
		kp, ok := byName[p.Name]
		if !ok && len(s.Ports) == 1 && len(ks.Ports) == 1 {
			kp, ok = ks.Ports[0], true // one port each: names need not agree
		}
		delete(byName, kp.Name)
		o := []string{obj, "port/" + p.Name}
		switch {
		case !ok:
			fs = append(fs, Finding{Code: CodePortMismatch, Severity: SeverityWarning, Objects: o,
				Message: fmt.Sprintf("port %s (%d) of service %s is missing from Kubernetes Service %s/%s", p.Name, p.Number, s.Name, ks.Namespace, ks.Name)})
		case kp.Port != p.Number:
			fs = append(fs, Finding{Code: CodePortMismatch, Severity: SeverityWarning, Objects: o,
				Message: fmt.Sprintf("port %s of service %s is %d in Git but %d in Kubernetes", p.Name, s.Name, p.Number, kp.Port)})
		case kp.TargetPort != "" && isNumber(kp.TargetPort) && kp.TargetPort != strconv.Itoa(p.TargetPort):
			fs = append(fs, Finding{Code: CodePortMismatch, Severity: SeverityWarning, Objects: o,
				Message: fmt.Sprintf("port %s of service %s targets %d in Git but %s in Kubernetes", p.Name, s.Name, p.TargetPort, kp.TargetPort)})
		}
	}
	for name, kp := range byName {
		fs = append(fs, Finding{Code: CodePortMismatch, Severity: SeverityInfo, Objects: []string{obj, "port/" + name},
			Message: fmt.Sprintf("Kubernetes Service %s/%s has port %s (%d) that Git does not declare", ks.Namespace, ks.Name, name, kp.Port)})
	}
	return fs
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

func watched(namespaces []string, ns string) bool {
	if len(namespaces) == 0 {
		return true
	}
	for _, n := range namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// certificateFindings reports certificates that expired, expire within
// the warning period, or failed to renew.
func certificateFindings(in Input) []Finding {
	var fs []Finding
	for _, c := range in.Certificates {
		obj := []string{"certificate/" + c.Kind + "/" + c.Name}
		switch {
		case c.RenewError != "":
			fs = append(fs, Finding{Code: CodeCertificate, Severity: SeverityError, Objects: obj,
				Message: fmt.Sprintf("%s certificate %s failed to renew: %s", c.Kind, c.Name, oneLine(c.RenewError, 300))})
		case !c.NotAfter.After(in.Now):
			fs = append(fs, Finding{Code: CodeCertificate, Severity: SeverityError, Objects: obj,
				Message: fmt.Sprintf("%s certificate %s expired at %s", c.Kind, c.Name, c.NotAfter.UTC().Format(time.RFC3339))})
		case c.NotAfter.Sub(in.Now) < in.ExpiryWarning:
			fs = append(fs, Finding{Code: CodeCertificate, Severity: SeverityWarning, Objects: obj,
				Message: fmt.Sprintf("%s certificate %s expires at %s", c.Kind, c.Name, c.NotAfter.UTC().Format(time.RFC3339))})
		}
	}
	return fs
}

// capPerCode keeps the first maxPerCode findings of each code (in sorted
// order, so which ones is stable) and counts the rest in one finding.
func capPerCode(fs []Finding) []Finding {
	Sort(fs)
	count := map[string]int{}
	out := fs[:0]
	var dropped []string
	for _, f := range fs {
		count[f.Code]++
		if count[f.Code] > maxPerCode {
			if count[f.Code] == maxPerCode+1 {
				dropped = append(dropped, f.Code)
			}
			continue
		}
		out = append(out, f)
	}
	for _, code := range dropped {
		out = append(out, Finding{Code: CodeTruncated, Severity: SeverityInfo, Objects: []string{"code/" + code},
			Message: fmt.Sprintf("%d more %s findings not listed", count[code]-maxPerCode, code)})
	}
	return out
}
