package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/gitmesh/gitmesh/reconciler/drift"
	"github.com/gitmesh/gitmesh/reconciler/kube"
	"github.com/gitmesh/gitmesh/reconciler/statusgit"
)

// driftFlags configure Kubernetes discovery, drift reports and their
// commits to the status branch.
type driftFlags struct {
	cluster string

	kubernetes     string // auto, on, off
	kubeconfig     string
	kubeNamespaces []string

	interval, staleAfter, expiryWarning time.Duration

	commit                    bool
	repo, branch, path        string
	authorName, authorEmail   string
	committerName, committerE string
	signingKey, signingPass   string
	leaderElect               string // auto, on, off
	leaseNamespace, leaseName string
}

func (d *driftFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&d.cluster, "cluster", "default", "name of this cluster in drift reports (status/CLUSTER.yaml)")
	f.StringVar(&d.kubernetes, "kubernetes", "auto", "Kubernetes discovery for services with discovery: kubernetes: auto (on with --kubeconfig or inside a cluster), on, off")
	f.StringVar(&d.kubeconfig, "kubeconfig", "", "kubeconfig file for Kubernetes discovery (default: in-cluster config, then $KUBECONFIG)")
	f.StringSliceVar(&d.kubeNamespaces, "kube-namespaces", nil, "namespaces to watch (default: all)")
	f.DurationVar(&d.interval, "drift-interval", 30*time.Second, "how often to rebuild the drift report (it is also rebuilt after every apply)")
	f.DurationVar(&d.staleAfter, "drift-stale-after", drift.DefaultStaleAfter, "grace period before an un-ACKed proxy counts as stale")
	f.DurationVar(&d.expiryWarning, "drift-expiry-warning", drift.DefaultExpiryWarning, "report certificates expiring within this period")
	f.BoolVar(&d.commit, "drift-commit", false, "commit drift reports to --drift-branch (with --leader-elect off, this replica must be the only writer)")
	f.StringVar(&d.repo, "drift-repo", "", "Git URL to commit drift reports to (default: --repo; same credentials flags)")
	f.StringVar(&d.branch, "drift-branch", "gitmesh-status", "branch for drift reports; may be the config branch (the loader ignores status/)")
	f.StringVar(&d.path, "drift-path", "", "path of the report in the branch (default status/CLUSTER.yaml)")
	f.StringVar(&d.authorName, "drift-author-name", "gitmesh", "author name of drift commits")
	f.StringVar(&d.authorEmail, "drift-author-email", "gitmesh@localhost", "author email of drift commits")
	f.StringVar(&d.committerName, "drift-committer-name", "", "committer name of drift commits (default: the author)")
	f.StringVar(&d.committerE, "drift-committer-email", "", "committer email of drift commits (default: the author)")
	f.StringVar(&d.signingKey, "drift-signing-key-file", "", "armored OpenPGP private key: drift commits are signed with it")
	f.StringVar(&d.signingPass, "drift-signing-passphrase-file", "", "file holding the signing key's passphrase")
	f.StringVar(&d.leaderElect, "leader-elect", "auto", "elect one drift writer among replicas with a Kubernetes Lease: auto (on when Kubernetes is configured), on, off")
	f.StringVar(&d.leaseNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the pod's namespace, else default)")
	f.StringVar(&d.leaseName, "leader-election-name", "gitmesh-drift-writer", "name of the Lease")
}

// kubeWanted decides whether Kubernetes is configured.
func (d *driftFlags) kubeWanted() (bool, error) {
	switch d.kubernetes {
	case "on":
		return true, nil
	case "off":
		return false, nil
	case "auto", "":
		return d.kubeconfig != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != "", nil
	}
	return false, usageError("serve: --kubernetes must be auto, on or off, not %q", d.kubernetes)
}

// driftParts are what serve runs for drift: discovery and leader election
// when Kubernetes is configured, and the report runner.
type driftParts struct {
	discovery *kube.Discovery
	leader    *kube.Leader
	runner    *drift.Runner
}

// newKube builds the Kubernetes client and discovery, or nothing when
// Kubernetes is not configured.
func newKube(d driftFlags, m *serveMain) (kubernetes.Interface, *kube.Discovery, error) {
	want, err := d.kubeWanted()
	if err != nil || !want {
		return nil, nil, err
	}
	cfg, err := kube.RESTConfig(d.kubeconfig)
	if err != nil {
		return nil, nil, usageError("serve: kubernetes: %v", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, usageError("serve: kubernetes: %v", err)
	}
	disc := kube.New(client, kube.Options{Namespaces: d.kubeNamespaces, Logger: m.log})
	return client, disc, nil
}

// newDriftRunner builds the report runner, its Git writer and, when asked
// for, the leader election that makes one replica the writer.
func newDriftRunner(d driftFlags, m *serveMain, client kubernetes.Interface) (*kube.Leader, *drift.Runner, error) {
	var (
		writer drift.Writer
		leader *kube.Leader
	)
	if d.commit {
		repo := d.repo
		if repo == "" {
			repo = m.cfg.repo
		}
		if repo == "" {
			return nil, nil, usageError("serve: --drift-commit needs a Git remote: --repo or --drift-repo")
		}
		w, err := statusgit.New(statusgit.Options{
			URL: repo, Credentials: m.cfg.creds, InsecureHTTP: m.cfg.insecureHTTPCreds, Branch: d.branch,
			Author:                statusgit.Signature{Name: d.authorName, Email: d.authorEmail},
			Committer:             statusgit.Signature{Name: d.committerName, Email: d.committerE},
			SigningKeyFile:        d.signingKey,
			SigningPassphraseFile: d.signingPass,
			Logger:                m.log,
		})
		if err != nil {
			return nil, nil, usageError("serve: drift: %v", err)
		}
		writer = gitWriter{w}
		elect := d.leaderElect
		if elect == "auto" || elect == "" {
			elect = map[bool]string{true: "on", false: "off"}[client != nil]
		}
		switch elect {
		case "on":
			if client == nil {
				return nil, nil, usageError("serve: --leader-elect on needs Kubernetes (--kubeconfig or in-cluster)")
			}
			ns := d.leaseNamespace
			if ns == "" {
				ns = podNamespace()
			}
			if leader, err = kube.NewLeader(client, kube.LeaderOptions{Namespace: ns, Name: d.leaseName, Logger: m.log}); err != nil {
				return nil, nil, usageError("serve: leader election: %v", err)
			}
		case "off":
			m.log.Info("committing drift reports as the single writer (--leader-elect off): run one such replica only", "branch", d.branch)
		default:
			return nil, nil, usageError("serve: --leader-elect must be auto, on or off, not %q", d.leaderElect)
		}
	}
	opts := drift.RunnerOptions{
		Cluster: d.cluster, Interval: d.interval, Writer: writer, Path: d.path,
		Logger: m.log, Registerer: m.registry, Settled: m.rec.Settled,
		Collect: func() drift.Input { return m.driftInput(d) },
	}
	if leader != nil {
		opts.IsLeader = leader.IsLeader
	}
	r, err := drift.NewRunner(opts)
	if err != nil {
		return nil, nil, internalError(err)
	}
	return leader, r, nil
}

// driftInput gathers one report's observations from every part.
func (m *serveMain) driftInput(d driftFlags) drift.Input {
	in := m.rec.DriftInput()
	in.Proxies, in.Rejections = m.xds.Proxies(), m.xds.Rejections()
	in.StaleAfter, in.ExpiryWarning = d.staleAfter, d.expiryWarning
	if disc := m.drift.discovery; disc != nil {
		h := disc.Health()
		k := &drift.Kubernetes{Reachable: h.Reachable, Error: h.Error, UnreachableSince: h.UnreachableSince, Namespaces: d.kubeNamespaces}
		for _, s := range disc.Services() {
			ks := drift.KubeService{Namespace: s.Namespace, Name: s.Name, ReadyEndpoints: s.ReadyEndpoints}
			for _, p := range s.Ports {
				ks.Ports = append(ks.Ports, drift.KubePort{Name: p.Name, Port: p.Port, TargetPort: p.TargetPort, Protocol: p.Protocol})
			}
			k.Services = append(k.Services, ks)
		}
		in.Kubernetes = k
	}
	if u := m.inject.uninjected; u != nil {
		in.Uninjected = u.List(time.Now())
	}
	return in
}

// podNamespace is the namespace gitmesh runs in, from the service account
// mount, or "default".
func podNamespace() string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return "default"
	}
	return strings.TrimSpace(string(b))
}

// gitWriter adapts statusgit.Writer to drift.Writer.
type gitWriter struct{ w *statusgit.Writer }

func (g gitWriter) Write(ctx context.Context, path string, content []byte, message string, same func([]byte) bool) (string, bool, error) {
	res, err := g.w.Write(ctx, statusgit.Change{Path: path, Content: content, Message: message, Same: same})
	if err != nil {
		return "", false, fmt.Errorf("commit to %s: %w", g.w, err)
	}
	return res.Commit, res.Committed, nil
}

func (g gitWriter) Read(ctx context.Context, path string) ([]byte, error) {
	b, err := g.w.Read(ctx, path)
	if errors.Is(err, statusgit.ErrNotFound) {
		return nil, drift.ErrNotFound
	}
	return b, err
}
