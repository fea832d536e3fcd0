package main

import (
	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/render/bootstrap"
)

func newBootstrapCmd() *cobra.Command {
	var (
		o        bootstrap.Options
		format   string
		tls      bootstrap.TLSFiles
		useTLS   bool
		adminStr int
	)
	cmd := &cobra.Command{
		Use:   "bootstrap --proxy ID --xds ADDR",
		Short: "Print the bootstrap a proxy starts with",
		Long: `bootstrap prints the static configuration that points a proxy at gitmesh:
an Envoy bootstrap (JSON) for sidecars and gateways, or a gRPC xDS bootstrap
(the GRPC_XDS_BOOTSTRAP file) for proxyless gRPC applications. The format
follows the proxy class unless --format says otherwise.

The node id is CLASS/INSTANCE, for example
sidecar/default/reviews/v2/reviews-v2-7f9c or ingress/bookinfo-gateway/gw-0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			class, _, err := nodeid.Parse(o.NodeID)
			if err != nil {
				return usageError("--proxy: %v", err)
			}
			if format == "" {
				format = "envoy"
				if class.Kind == nodeid.KindProxyless {
					format = "grpc"
				}
			}
			if useTLS {
				o.TLS = &tls
			}
			o.AdminPort = adminStr
			var out []byte
			switch format {
			case "envoy":
				out, err = bootstrap.Envoy(o)
			case "grpc":
				out, err = bootstrap.GRPC(o)
			default:
				return usageError("--format: unknown format %q (want envoy or grpc)", format)
			}
			if err != nil {
				return usageError("%v", err)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.NodeID, "proxy", "", "node id: CLASS/INSTANCE (required)")
	f.StringVar(&o.XDSAddress, "xds", "127.0.0.1:15010", "host:port of gitmesh's xDS server")
	f.BoolVar(&o.Delta, "delta", false, "use incremental (delta) xDS")
	f.StringVar(&format, "format", "", "envoy or grpc (default: by proxy class)")
	f.IntVar(&adminStr, "admin-port", 15000, "Envoy admin port")
	f.BoolVar(&useTLS, "tls", false, "connect to gitmesh with mutual TLS using the files below")
	f.StringVar(&tls.CertFile, "cert", "/etc/gitmesh/cert.pem", "client certificate (with --tls)")
	f.StringVar(&tls.KeyFile, "key", "/etc/gitmesh/key.pem", "client key (with --tls)")
	f.StringVar(&tls.CAFile, "ca", "/etc/gitmesh/ca.pem", "CA bundle (with --tls)")
	f.StringVar(&o.RefreshInterval, "refresh-interval", "60s", "how often a proxyless app re-reads its certificate files (with --tls)")
	cmd.MarkFlagRequired("proxy")
	return cmd
}
