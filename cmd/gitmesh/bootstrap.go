package main

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/proxyports"
	"github.com/gitmesh/gitmesh/render/bootstrap"
)

func newBootstrapCmd() *cobra.Command {
	var (
		o        bootstrap.Options
		kind     string
		tls      bootstrap.TLSFiles
		useTLS   bool
		adminStr int
		refresh  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bootstrap --proxy ID --xds ADDR",
		Short: "Print the bootstrap a proxy starts with",
		Long: `bootstrap prints the static configuration that points a proxy at gitmesh:
an Envoy bootstrap (JSON) for sidecars and gateways, or a gRPC xDS bootstrap
(the GRPC_XDS_BOOTSTRAP file) for proxyless gRPC applications. The kind
follows the proxy class unless --kind says otherwise.

The node id is CLASS/INSTANCE, for example
sidecar/default/reviews/v2/reviews-v2-7f9c or ingress/bookinfo-gateway/gw-0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			class, _, err := nodeid.Parse(o.NodeID)
			if err != nil {
				return usageError("--proxy: %v", err)
			}
			if kind == "" {
				kind = "envoy"
				if class.Kind == nodeid.KindProxyless {
					kind = "grpc"
				}
			}
			if useTLS {
				o.TLS = &tls
			}
			o.AdminPort = adminStr
			// A protobuf JSON Duration: seconds with an "s" ("60s", "1.5s").
			o.RefreshInterval = strconv.FormatFloat(refresh.Seconds(), 'f', -1, 64) + "s"
			var out []byte
			if kind == "grpc" {
				out, err = bootstrap.GRPC(o)
			} else {
				out, err = bootstrap.Envoy(o)
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
	f.StringVar(&kind, "kind", "", "bootstrap kind: envoy or grpc (default: by proxy class)")
	flagOneOf(cmd, "kind", "envoy", "grpc")
	deprecatedAlias(cmd, "format", "kind")
	f.IntVar(&adminStr, "admin-port", proxyports.Admin, "Envoy admin port")
	flagMax(cmd, "admin-port", "65535")
	f.BoolVar(&useTLS, "tls", false, "connect to gitmesh with mutual TLS using the files below")
	f.StringVar(&tls.CertFile, "cert", "/etc/gitmesh/cert.pem", "client certificate (with --tls)")
	f.StringVar(&tls.KeyFile, "key", "/etc/gitmesh/key.pem", "client key (with --tls)")
	f.StringVar(&tls.CAFile, "ca", "/etc/gitmesh/ca.pem", "CA bundle (with --tls)")
	f.DurationVar(&refresh, "refresh-interval", time.Minute, "how often a proxyless app re-reads its certificate files (with --tls)")
	cmd.MarkFlagRequired("proxy")
	return cmd
}
