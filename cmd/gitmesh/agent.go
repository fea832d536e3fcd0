package main

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/proxyports"
	"github.com/gitmesh/gitmesh/reconciler/agent"
	"github.com/gitmesh/gitmesh/reconciler/ca"
)

func newAgentCmd(g *globalFlags) *cobra.Command {
	var (
		o       agent.Options
		refresh time.Duration
	)
	cmd := &cobra.Command{
		// In a pod the agent is configured by its command line or by
		// GITMESH_* variables, like serve.
		Annotations: map[string]string{annoEnv: "true"},
		Use:         "agent --proxy ID --xds ADDR (--token FILE | --cert FILE --key FILE) --ca FILE --out DIR",
		Short:       "Get and keep rotated a workload's certificate files",
		Long: `agent keeps DIR/cert.pem, DIR/key.pem (0600) and DIR/ca.pem current for the
node --proxy, writing them atomically. grpc-go's xDS credentials read
certificates only through file_watcher providers, so its bootstrap points
at these; Envoy's xDS client certificate comes from SDS files holding the
same pair (token mode).

With --token (in a Kubernetes pod): FILE is a projected service-account
token with audience "gitmesh". The agent sends it with a CSR to the
certificate signing service on gitmesh's xDS port, which checks it with
the TokenReview API and signs a certificate for exactly the token's
namespace and service account. The agent renews at half the remaining
life, re-reading the token each time; a deleted service account gets no
more certificates. --bootstrap-out and --grpc-bootstrap-out write an Envoy
and a gRPC xDS bootstrap that use the files, once the first certificate is
there. With --bootstrap-out the agent also keeps DIR/xds-cert.json and
DIR/xds-ca.json, file-based SDS resources that Envoy's xDS cluster reads
its client certificate from and reloads on every renewal (Envoy reads a
bootstrap's certificate files only once). --status-addr serves
/healthz/ready, 200 once the certificate and the bootstraps are written.

With --cert and --key (bootstrap credentials from gitmesh certs issue): the
agent connects to the xDS port over mutual TLS as the node, subscribes to
its SDS secrets and writes them on every push, reconnecting with the newest
certificate it has.

--ca is the CA bundle that signs gitmesh's serving certificate, in both
modes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.newLogger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.Logger = log
			// A protobuf JSON Duration, as gitmesh bootstrap writes it.
			o.RefreshInterval = strconv.FormatFloat(refresh.Seconds(), 'f', -1, 64) + "s"
			if err := agent.Run(cmd.Context(), o); err != nil {
				return usageError("%v", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.NodeID, "proxy", "", "node id: CLASS/INSTANCE (required)")
	f.StringVar(&o.XDSAddress, "xds", "127.0.0.1:15010", "host:port of gitmesh's xDS server")
	f.StringVar(&o.ServerName, "server-name", "", "name in gitmesh's serving certificate (default: the host of --xds)")
	f.StringVar(&o.CertFile, "cert", "/etc/gitmesh/cert.pem", "bootstrap client certificate")
	f.StringVar(&o.KeyFile, "key", "/etc/gitmesh/key.pem", "bootstrap client key")
	f.StringVar(&o.CAFile, "ca", "/etc/gitmesh/ca.pem", "CA bundle that signs gitmesh's serving certificate")
	f.StringVar(&o.OutDir, "out", "", "directory to keep cert.pem, key.pem and ca.pem in (required)")
	f.StringVar(&o.TokenFile, "token", "", "projected service-account token (audience \"gitmesh\"): get certificates from gitmesh's signing service with it instead of --cert and --key")
	f.DurationVar(&o.CertTTL, "cert-ttl", ca.DefaultWorkloadTTL, "with --token: certificate lifetime to ask for (gitmesh's --workload-cert-ttl caps it)")
	workloadTTLMin(cmd, "cert-ttl")
	f.StringVar(&o.BootstrapOut, "bootstrap-out", "", "with --token: write an Envoy bootstrap using the certificate files here")
	f.StringVar(&o.GRPCBootstrapOut, "grpc-bootstrap-out", "", "with --token: write a gRPC xDS bootstrap (GRPC_XDS_BOOTSTRAP) using the certificate files here")
	f.BoolVar(&o.Delta, "delta", false, "with --bootstrap-out: the Envoy bootstrap uses incremental (delta) xDS")
	f.DurationVar(&refresh, "refresh-interval", time.Minute, "with --grpc-bootstrap-out: how often the application re-reads the certificate files")
	f.StringVar(&o.ReadyAddress, "status-addr", "", "serve "+agent.ReadyPath+" here (200 once the certificate and the bootstraps are written, 503 before); the injected pod uses :"+strconv.Itoa(proxyports.AgentStatus)+" for its startup probe; empty: off")
	cmd.MarkFlagRequired("proxy")
	cmd.MarkFlagRequired("out")
	describeEnv(f)
	return cmd
}
