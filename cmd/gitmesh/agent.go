package main

import (
	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/reconciler/agent"
)

func newAgentCmd(g *globalFlags) *cobra.Command {
	var o agent.Options
	cmd := &cobra.Command{
		Use:   "agent --proxy ID --xds ADDR --cert FILE --key FILE --ca FILE --out DIR",
		Short: "Keep a proxyless gRPC workload's certificate files rotated",
		Long: `agent connects to gitmesh's xDS port over mutual TLS as the node --proxy,
subscribes to the node's SDS secrets and writes DIR/cert.pem, DIR/key.pem
(0600) and DIR/ca.pem on every push, atomically. grpc-go's xDS credentials
read certificates only through file_watcher providers; point the gRPC
bootstrap's "default" provider at these files (gitmesh bootstrap --tls
--cert DIR/cert.pem --key DIR/key.pem --ca DIR/ca.pem). --cert, --key and
--ca are the bootstrap credentials from gitmesh certs issue; once a
certificate is written, the agent reconnects with the newest one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.newLogger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.Logger = log
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
	cmd.MarkFlagRequired("proxy")
	cmd.MarkFlagRequired("out")
	return cmd
}
