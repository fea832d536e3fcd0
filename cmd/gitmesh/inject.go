package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"

	"github.com/gitmesh/gitmesh/reconciler/inject"
)

// injectFlags are serve's sidecar injection flags.
type injectFlags struct {
	addr        string
	url         string
	serverNames []string
	config      string
	native      string
	opts        inject.Options
	// addrFlag tells a --webhook-addr given (flag or GITMESH_WEBHOOK_ADDR)
	// from the default; nil (tests building the config) counts as given.
	addrFlag *pflag.Flag
}

func (f *injectFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.addr, "webhook-addr", ":15017", `address of the sidecar injection webhook (HTTPS, certificate from gitmesh's CA); opened when serve runs with Kubernetes or this is set; "" turns injection off`)
	f.addrFlag = fs.Lookup("webhook-addr")
	fs.StringVar(&f.url, "webhook-url", "", "URL the API server calls the webhook at, when gitmesh runs outside the cluster (default: the Service gitmesh-system/gitmesh, port 15017)")
	fs.StringSliceVar(&f.serverNames, "webhook-server-names", []string{"gitmesh.gitmesh-system.svc", "gitmesh.gitmesh-system.svc.cluster.local"},
		"DNS names (or IPs) in the webhook port's serving certificate, besides 127.0.0.1 and ::1")
	fs.StringVar(&f.config, "webhook-config", inject.WebhookConfigName, `MutatingWebhookConfiguration whose caBundle serve keeps current (created if missing) when it runs with Kubernetes; "" leaves it alone`)
	fs.StringVar(&f.native, "inject-native-sidecars", "auto", "inject the agent and Envoy as native sidecars (init containers with restartPolicy Always): auto (when the API server is 1.29 or later), on or off")
	fs.StringVar(&f.opts.ServiceLabel, "inject-service-label", inject.DefaultServiceLabel, "pod label whose value names the pod's mesh service")
	fs.StringVar(&f.opts.VersionLabel, "inject-version-label", inject.DefaultVersionLabel, "pod label whose value names the pod's mesh version")
	fs.StringVar(&f.opts.ProxyImage, "inject-proxy-image", inject.DefaultProxyImage, "Envoy image of injected sidecars")
	fs.StringVar(&f.opts.AgentImage, "inject-agent-image", inject.DefaultAgentImage, "gitmesh image of the injected capture init container and agent")
	fs.StringVar(&f.opts.XDSAddress, "inject-xds-address", inject.DefaultXDSAddress, "host:port injected agents reach gitmesh's xDS (and certificate) server at")
}

// injectParts is the webhook server and the caBundle keeper; both nil when
// injection is off.
type injectParts struct {
	lis    net.Listener
	server *http.Server
	keeper *inject.Keeper
	// uninjected feeds the drift report (GM2012).
	uninjected *inject.Uninjected
}

// newInject builds the webhook server (bound here, with the other ports)
// and, when serve talks to Kubernetes, the keeper of its configuration.
func newInject(f injectFlags, m *serveMain, client kubernetes.Interface) (injectParts, error) {
	if f.addr == "" {
		return injectParts{}, nil
	}
	if client == nil && f.addrFlag != nil && !f.addrFlag.Changed {
		// Without Kubernetes nothing calls the webhook unless it was asked
		// for: a local serve (make run, tests, two serves side by side)
		// must not take a fixed port on every interface.
		return injectParts{}, nil
	}
	opts := f.opts
	switch f.native {
	case "on":
		opts.NativeSidecars = true
	case "off":
	case "auto", "":
		if client != nil {
			ok, err := inject.NativeSidecarsSupported(client)
			if err != nil {
				// Unknown: assume a current cluster (1.29 is from 2023);
				// an older one refuses the pod with a clear error.
				m.log.Warn("could not read the Kubernetes version; injecting native sidecars", "err", err)
				ok = true
			}
			opts.NativeSidecars = ok
		} else {
			opts.NativeSidecars = true
		}
	default:
		return injectParts{}, usageError("serve: --inject-native-sidecars must be auto, on or off, not %q", f.native)
	}
	names := f.serverNames
	uninjected := inject.NewUninjected(0)
	mux := http.NewServeMux()
	mux.Handle(inject.Path, inject.Handler(inject.HandlerOptions{Mesh: m.rec.Mesh, Options: opts, Logger: m.log, Uninjected: uninjected}))
	p := injectParts{uninjected: uninjected, server: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// Re-issued by the CA before expiry and after a root rotation;
			// the keeper moves the caBundle with it.
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.ca.ServingCert(names) },
		},
	}}
	// Out of the cluster without --webhook-url the API server could not
	// reach this process: registering it (failurePolicy Fail) would only
	// refuse the opted-in namespaces' pods, so a laptop running serve
	// with --kubeconfig for discovery leaves the object alone.
	inCluster := os.Getenv("KUBERNETES_SERVICE_HOST") != ""
	if client != nil && f.config != "" && (inCluster || f.url != "") {
		p.keeper = &inject.Keeper{Client: client, Config: inject.ConfigOptions{Name: f.config, URL: f.url}, Bundle: m.ca.TrustBundle, Logger: m.log}
	}
	lis, err := net.Listen("tcp", f.addr)
	if err != nil {
		return injectParts{}, usageError("serve: --webhook-addr: %v", err)
	}
	p.lis = lis
	return p, nil
}

// run serves the webhook until ctx ends.
func (p injectParts) run(ctx context.Context, g *errgroup.Group) {
	if p.server == nil {
		return
	}
	g.Go(func() error {
		err := p.server.ServeTLS(p.lis, "", "")
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("webhook port: %w", err)
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return p.server.Shutdown(shutdown)
	})
	if p.keeper != nil {
		g.Go(func() error { p.keeper.Run(ctx); return nil })
	}
}

// WebhookAddr is the bound webhook address ("" when injection is off).
func (m *serveMain) WebhookAddr() string {
	if m.inject.lis == nil {
		return ""
	}
	return m.inject.lis.Addr().String()
}
