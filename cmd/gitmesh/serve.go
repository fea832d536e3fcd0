package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/gitmesh/gitmesh/reconciler"
	"github.com/gitmesh/gitmesh/reconciler/api"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/certsvc"
	"github.com/gitmesh/gitmesh/reconciler/graph"
	"github.com/gitmesh/gitmesh/reconciler/promrates"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// serveConfig is every serve flag; each also reads from GITMESH_*.
type serveConfig struct {
	repo, branch, path string
	dir                string
	creds              source.Credentials
	insecureHTTPCreds  bool

	xdsAddr, httpAddr string
	xdsInsecure       bool
	xdsNames          []string
	// maxConnsPerIdentity bounds one identity's xDS connections.
	maxConnsPerIdentity int
	caCert, caKey       string
	caChain             string
	workloadTTL         time.Duration
	credentialsDir      string
	stateDir            string
	interval            time.Duration
	webhookSecretFile   string
	maxClassLoss        float64
	load                loadFlags
	drift               driftFlags
	inject              injectFlags
	// prometheusURL and rateWindow feed the graph's edge rates.
	prometheusURL string
	rateWindow    time.Duration

	// repoURLTemplate and tracingURLTemplate are the console's links.
	repoURLTemplate, tracingURLTemplate string
}

func newServeCmd(g *globalFlags) *cobra.Command {
	var cfg serveConfig
	cmd := &cobra.Command{
		Use:   "serve (--repo URL | --dir DIR)",
		Short: "Reconcile a mesh from Git (or a directory) and serve it over xDS",
		Long: `serve pulls the mesh repository, validates and renders every new revision,
and serves the result to proxies over xDS (ADS, state of the world and delta).
A revision that fails any step is never pushed: the last good one keeps
serving, and is kept under --state-dir so a restart without Git serves it too.

The status port (--http-addr) serves the read-only status API
(/api/v1/status, /api/v1/proxies, …), the read-only console (/ui/), /healthz,
/readyz, /metrics and the push webhooks (/hooks/github, /hooks/gitlab,
/hooks/generic).

Every flag can also be set with a GITMESH_* environment variable.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annoEnv: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.newLogger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			m, err := newServeMain(cfg, log)
			if err != nil {
				return err
			}
			if err := m.Run(cmd.Context()); err != nil {
				return internalError(err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.repo, "repo", "", "Git URL of the mesh repository (https://, ssh://, git://, file://)")
	f.StringVar(&cfg.branch, "branch", "main", "branch to follow")
	f.StringVar(&cfg.path, "path", "", "directory of the mesh inside the repository")
	f.StringVar(&cfg.dir, "dir", "", "serve a plain directory instead of Git (local development), reloading on change")
	f.StringVar(&cfg.creds.Username, "git-username", "", "username for HTTP basic auth")
	f.StringVar(&cfg.creds.PasswordFile, "git-password-file", "", "file holding the HTTP password")
	f.StringVar(&cfg.creds.PasswordEnv, "git-password-env", "", "environment variable holding the HTTP password")
	f.StringVar(&cfg.creds.TokenFile, "git-token-file", "", "file holding an HTTP bearer token")
	f.StringVar(&cfg.creds.TokenEnv, "git-token-env", "", "environment variable holding an HTTP bearer token")
	f.StringVar(&cfg.creds.SSHKeyFile, "git-ssh-key-file", "", "file holding the SSH private key")
	f.StringVar(&cfg.creds.KnownHostsFile, "git-known-hosts-file", "", "known_hosts file for SSH remotes")
	f.StringVar(&cfg.creds.CAFile, "git-ca-file", "", "extra CA certificates (PEM) for an https remote")
	f.BoolVar(&cfg.insecureHTTPCreds, "git-insecure-http", false, "allow credentials over plain http:// (development only)")
	f.StringVar(&cfg.xdsAddr, "xds-addr", ":15010", "address of the xDS (ADS) gRPC server")
	f.StringVar(&cfg.httpAddr, "http-addr", ":15014", "address of the status API, metrics and webhooks")
	f.BoolVar(&cfg.xdsInsecure, "xds-insecure", false, "serve xDS without TLS (local development only; no private key is ever served then)")
	f.StringSliceVar(&cfg.xdsNames, "xds-server-names", []string{"localhost"}, "DNS names (or IPs) in the xDS port's serving certificate, besides 127.0.0.1 and ::1")
	f.StringVar(&cfg.caCert, "ca-cert", "", "plug-in CA: intermediate CA certificate (PEM); with --ca-key and --ca-chain")
	f.StringVar(&cfg.caKey, "ca-key", "", "plug-in CA: the intermediate's private key (PEM)")
	f.StringVar(&cfg.caChain, "ca-chain", "", "plug-in CA: the chain above the intermediate up to the root (PEM); its root is the trust bundle")
	f.DurationVar(&cfg.workloadTTL, "workload-cert-ttl", ca.DefaultWorkloadTTL, "lifetime of issued workload certificates (at least "+minWorkloadTTL.String()+")")
	f.StringVar(&cfg.credentialsDir, "credentials-dir", "", "gateway credentials: DIR/NAME/{tls.crt,tls.key,ca.crt} for each credentialName")
	f.StringVar(&cfg.stateDir, "state-dir", "", "directory for the last good state and the Git cache (default: .gitmesh-state in the working directory)")
	f.DurationVar(&cfg.interval, "interval", time.Minute, "how often to poll the source")
	f.Float64Var(&cfg.maxClassLoss, "max-class-loss", reconciler.DefaultMaxClassLoss, "refuse a revision that removes more than this percentage of the live proxy classes, unless the repository sets mesh.allowClassLoss: true (100 turns the check off)")
	flagMax(cmd, "max-class-loss", "100")
	f.IntVar(&cfg.maxConnsPerIdentity, "max-conns-per-identity", xds.DefaultMaxConnsPerIdentity, "refuse an xDS connection when its client certificate's identity (all replicas of a service account share one) already holds this many")
	f.StringVar(&cfg.prometheusURL, "prometheus-url", "", "Prometheus that scrapes the mesh's proxies (http://host:9090): the graph's edges show request and error rates (off when empty)")
	f.DurationVar(&cfg.rateWindow, "prometheus-rate-window", promrates.DefaultWindow, "window of the graph's rates (rate(...[WINDOW]))")
	f.StringVar(&cfg.webhookSecretFile, "webhook-secret-file", "", "file holding the shared secret of the push webhooks (webhooks are off without it)")
	f.StringVar(&cfg.repoURLTemplate, "repo-url-template", "", "console: link findings to the repository browser, e.g. https://git.example.com/org/mesh/blob/{rev}/{file}#L{line} ({col} too)")
	f.StringVar(&cfg.tracingURLTemplate, "tracing-url-template", graph.DefaultTracesURL, "console: link services to their traces when mesh.tracing is set ({tracingService}: the name the proxies report, SERVICE.NAMESPACE; {service}, {namespace}; \"\" links nothing)")
	workloadTTLMin(cmd, "workload-cert-ttl")
	flagMin(cmd, "interval", "1s", "polling more often only loads the Git server; push webhooks trigger a fetch at once")
	cfg.load.register(cmd)
	cfg.drift.register(cmd)
	cfg.inject.register(cmd)
	describeEnv(f)
	return cmd
}

// serveMain is the running control plane: every part built and wired in
// one place, in the order it must start. Tests build it with newServeMain
// and run it in-process, so they exercise the real wiring.
type serveMain struct {
	cfg      serveConfig
	log      *slog.Logger
	registry *prometheus.Registry
	source   source.Source
	ca       *ca.CA
	xds      *xds.Server
	rec      *reconciler.Reconciler
	drift    driftParts
	inject   injectParts
	// caRoots keeps the trust bundle in opted-in namespaces (Kubernetes only).
	caRoots *certsvc.RootPublisher
	xdsLis  net.Listener
	httpLis net.Listener
	http    *http.Server
	// rates queries --prometheus-url; nil without it.
	rates *promrates.Client
	// lock holds --state-dir for this process until Run returns.
	lock *state.Lock
}

func newServeMain(cfg serveConfig, log *slog.Logger) (*serveMain, error) {
	if (cfg.repo == "") == (cfg.dir == "") {
		return nil, usageError("serve: set exactly one of --repo URL or --dir DIR")
	}
	if cfg.stateDir == "" {
		cfg.stateDir = ".gitmesh-state"
	}

	m := &serveMain{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	// The state dir first: a second serve on it must fail before it writes
	// a CA, a Git cache or a last good state there.
	lock, err := state.Acquire(cfg.stateDir)
	if err != nil {
		return nil, usageError("serve: --state-dir: %v", err)
	}
	m.lock = lock
	ok := false
	defer func() {
		if !ok {
			lock.Release()
			m.cfg.load.close()
		}
	}()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var watch func(context.Context) <-chan struct{}
	if cfg.dir != "" {
		d, err := source.NewDir(source.DirOptions{Dir: cfg.dir, MaxFileSize: cfg.load.maxFileSize, Logger: log})
		if err != nil {
			return nil, usageError("serve: %v", err)
		}
		m.source = d
		watch = d.Watch
	} else {
		g, err := source.NewGit(source.GitOptions{
			URL: cfg.repo, Branch: cfg.branch, Path: cfg.path,
			CacheDir:                filepath.Join(cfg.stateDir, "git"),
			MaxFetchSize:            cfg.load.maxRepoSize, // the whole fetch, not only the mesh files
			Credentials:             cfg.creds,
			InsecureHTTPCredentials: cfg.insecureHTTPCreds,
		})
		if err != nil {
			return nil, usageError("serve: %v", err)
		}
		m.source = g
	}

	if m.ca, err = newCA(cfg.stateDir, cfg.caCert, cfg.caKey, cfg.caChain, cfg.workloadTTL); err != nil {
		return nil, err
	}
	kubeClient, disc, err := newKube(cfg.drift, m)
	if err != nil {
		return nil, err
	}
	xopts := xds.Options{Logger: log, Registerer: m.registry, MaxConnsPerIdentity: cfg.maxConnsPerIdentity}
	servingCert := func() (*tls.Certificate, error) { return m.ca.ServingCert(cfg.xdsNames) }
	switch {
	case cfg.xdsInsecure:
		log.Warn("serving xDS WITHOUT TLS (--xds-insecure): any client that reaches the port can read the mesh's configuration and claim any node; private keys are withheld, so mTLS between workloads needs certificates from `gitmesh certs issue`; use for local development only")
	case kubeClient != nil:
		// Workload identity from service-account tokens (certsvc): the
		// signing service is the one method a caller without a client
		// certificate may reach; xDS still requires one.
		signer, err := certsvc.New(certsvc.Options{CA: m.ca, Reviewer: certsvc.KubeReviewer{Client: kubeClient},
			TrustDomain: func() (string, bool) { return m.rec.TrustDomain() }, Logger: log, Registerer: m.registry})
		if err != nil {
			return nil, internalError(err)
		}
		// Agents verify this port with the bundle before sending a token:
		// publish it where their pods mount it from.
		m.caRoots = certsvc.NewRootPublisher(certsvc.PublisherOptions{Client: kubeClient, Bundle: m.ca.TrustBundle, Logger: log})
		xopts.Credentials = xds.MutualTLSCertOptional(servingCert, m.ca.TrustPool)
		xopts.Services = signer.Register
		xopts.Certless = []string{certsvc.CreateCertificateMethod}
	default:
		xopts.Credentials = xds.MutualTLS(servingCert, m.ca.TrustPool)
	}
	if !cfg.xdsInsecure {
		// m.rec exists before the first stream can arrive: Serve starts in Run.
		xopts.Authorize = xds.AuthorizeIdentity(func(class string) (string, bool) { return m.rec.IdentityOf(class) })
	}
	m.xds, err = xds.New(xopts)
	if err != nil {
		return nil, internalError(err)
	}
	var creds reconciler.CredentialSource
	if cfg.credentialsDir != "" {
		creds = reconciler.CredentialDir{Dir: cfg.credentialsDir}
	}
	m.drift.discovery = disc
	// One evaluation worker for the life of serve: it keeps the
	// incremental load cache (schema.Sandbox).
	loadOpts, err := m.cfg.load.options()
	if err != nil {
		return nil, err
	}
	ropts := reconciler.Options{
		Source: m.source, Watch: watch, Server: m.xds, StateDir: cfg.stateDir, Interval: cfg.interval,
		Load: loadOpts, Logger: log, Registerer: m.registry,
		CA: m.ca, WorkloadTTL: cfg.workloadTTL, Credentials: creds, WithholdKeys: cfg.xdsInsecure,
		MaxClassLoss: cfg.maxClassLoss,
		// The drift report is rebuilt after every apply; the runner exists
		// before the loop runs.
		OnApplied: func() { m.drift.runner.Trigger() },
	}
	if disc != nil {
		ropts.Discovery = disc
	}
	if m.rec, err = reconciler.New(ropts); err != nil {
		return nil, internalError(err)
	}
	if m.drift.leader, m.drift.runner, err = newDriftRunner(cfg.drift, m, kubeClient); err != nil {
		return nil, err
	}
	hooks, err := newHooks(cfg.webhookSecretFile, m.rec.Trigger, log)
	if err != nil {
		return nil, err
	}
	apiOpts := api.Options{
		Status: m.rec, Proxies: m.xds, Gatherer: m.registry, Hooks: hooks, Logger: log,
		Drift: m.drift.runner, Kubernetes: m.kubeStatus,
		Live: m.rec, RepoURLTemplate: cfg.repoURLTemplate, RepoPath: cfg.path, TracesURLTemplate: cfg.tracingURLTemplate,
	}
	if cfg.prometheusURL != "" {
		if m.rates, err = promrates.New(cfg.prometheusURL, cfg.rateWindow); err != nil {
			return nil, usageError("serve: --prometheus-url: %v", err)
		}
		apiOpts.Rates = m.rates
	}
	m.http = api.NewServer(cfg.httpAddr, api.Handler(apiOpts))

	// Bind both ports before anything runs, so a taken port fails fast
	// with a clear error instead of after the first reconcile.
	if m.xdsLis, err = net.Listen("tcp", cfg.xdsAddr); err != nil {
		return nil, usageError("serve: --xds-addr: %v", err)
	}
	if m.httpLis, err = net.Listen("tcp", cfg.httpAddr); err != nil {
		m.xdsLis.Close()
		return nil, usageError("serve: --http-addr: %v", err)
	}
	if m.inject, err = newInject(cfg.inject, m, kubeClient); err != nil {
		m.xdsLis.Close()
		m.httpLis.Close()
		return nil, err
	}
	ok = true
	return m, nil
}

// Run restores the last good state, then runs the xDS server, the status
// port and the reconcile loop until ctx ends, and shuts them down in
// reverse order.
func (m *serveMain) Run(ctx context.Context) error {
	defer m.lock.Release()
	defer m.cfg.load.close()
	switch err := m.rec.Restore(); {
	case err == nil:
	case errors.Is(err, state.ErrNotFound):
		m.log.Info("no last good state yet; waiting for the first good revision", "state_dir", m.cfg.stateDir)
	case errors.Is(err, state.ErrOtherOrigin):
		// Serving another repository's, branch's or path's config would be
		// silently wrong; serving nothing says so (Ready=False, NoRevision)
		// until this source's first good revision replaces the file.
		m.log.Error("the state dir belongs to another source; starting empty", "err", err)
	default:
		// A corrupt or foreign state file must not stop serving from Git.
		m.log.Error("could not restore the last good state; starting empty", "err", err)
	}
	m.log.Info("serving", "source", m.source.String(), "xds", m.xdsLis.Addr().String(), "http", m.httpLis.Addr().String(), "webhook", m.WebhookAddr(),
		"mtls", !m.cfg.xdsInsecure, "plugin_ca", m.ca.Plugin())

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.xds.Serve(ctx, m.xdsLis) })
	g.Go(func() error {
		err := m.http.Serve(m.httpLis)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("status port: %w", err)
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return m.http.Shutdown(shutdown)
	})
	m.inject.run(ctx, g)
	if p := m.caRoots; p != nil {
		g.Go(func() error { p.Run(ctx); return nil })
	}
	if d := m.drift.discovery; d != nil {
		g.Go(func() error { d.Run(ctx); return nil })
		// The first render should see Kubernetes' endpoints, not an empty
		// cache; if the API server is down, serve what we have and say so.
		sync, cancel := context.WithTimeout(ctx, 30*time.Second)
		if !d.WaitForSync(sync) && ctx.Err() == nil {
			m.log.Warn("Kubernetes caches not synced after 30s; reconciling without them", "error", d.Health().Error)
		}
		cancel()
	}
	if l := m.drift.leader; l != nil {
		g.Go(func() error { l.Run(ctx); return nil })
	}
	g.Go(func() error { m.drift.runner.Run(ctx); return nil })
	g.Go(func() error { return m.rec.Run(ctx) })
	return g.Wait()
}

// kubeStatus is the Kubernetes part of GET /api/v1/status; nil when
// discovery is off.
func (m *serveMain) kubeStatus() *apiv1.Kubernetes {
	d := m.drift.discovery
	if d == nil {
		return nil
	}
	h := d.Health()
	out := &apiv1.Kubernetes{Synced: h.Synced, Reachable: h.Reachable, Error: h.Error,
		UnreachableSince: h.UnreachableSince, LastEvent: h.LastEvent}
	if l := m.drift.leader; l != nil {
		out.Leader = &apiv1.Leader{Identity: l.Identity(), Leading: l.IsLeader(), Holder: l.Holder()}
	}
	return out
}

// XDSAddr and HTTPAddr are the bound addresses (tests listen on port 0).
func (m *serveMain) XDSAddr() string  { return m.xdsLis.Addr().String() }
func (m *serveMain) HTTPAddr() string { return m.httpLis.Addr().String() }
