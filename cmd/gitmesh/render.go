package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema/model"
)

func newRenderCmd(_ *globalFlags) *cobra.Command {
	var (
		list   bool
		proxy  string
		output string
		load   loadFlags
	)
	cmd := &cobra.Command{
		Use:   "render [DIR] (--list | --proxy ID | -o hosts)",
		Short: "Render a mesh repository into Envoy configuration",
		Long: `render runs the mesh repository in DIR (default: the current directory)
through the same pipeline as validate and serve, and prints the Envoy
resources each proxy receives (Git's endpoints; gateway credentials are
trusted by name, see gitmesh validate).

--list prints the proxy classes (sidecar/NS/SVC/VER, proxyless/NS/SVC/VER,
ingress/GW, egress/GW). --proxy prints one proxy's resources in the shape of
Envoy's /config_dump; it takes a class or a full node id (CLASS/INSTANCE).
-o hosts prints /etc/hosts lines, "VIP NAME.NS.svc.DOMAIN NAME.NS NAME" for
every service VIP, for workloads without Kubernetes DNS (an init container
appends them: gitmesh render /mesh -o hosts >> /etc/hosts).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hosts := output == "hosts"
			if n := btoi(list) + btoi(proxy != "") + btoi(hosts); n != 1 {
				return usageError("render: set exactly one of --list, --proxy ID or -o hosts")
			}
			dir, res, err := load.runArg(cmd, args)
			if err != nil {
				return err
			}
			if !res.OK() {
				printErrors(cmd, dir, res.Diagnostics)
				return errFindings
			}
			b := res.Bundle
			w := cmd.OutOrStdout()
			if hosts {
				_, err := fmt.Fprint(w, render.HostsFile(res.Render))
				return err
			}
			if list {
				for _, c := range b.Classes() {
					fmt.Fprintln(w, c)
				}
				return nil
			}
			class := proxy
			if c, _, err := nodeid.Parse(proxy); err == nil {
				class = c.Name
			}
			p := b.Proxy(class)
			if p == nil {
				return usageError("render: no proxy class %q in %s (gitmesh render %s --list shows them)", proxy, dir, dir)
			}
			out, err := render.ConfigDump(p)
			if err != nil {
				return internalError(err)
			}
			if output == "yaml" {
				if out, err = yaml.JSONToYAML(out); err != nil {
					return internalError(err)
				}
			}
			_, err = w.Write(out)
			return err
		},
	}
	cmd.Flags().BoolVar(&list, "list", false, "list the proxy classes")
	cmd.Flags().StringVar(&proxy, "proxy", "", "print the resources of this proxy class or node id")
	outputFlag(cmd, &output, "json", "yaml", "hosts")
	load.register(cmd)
	return cmd
}

// btoi counts a set option.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// printErrors prints the findings that stop rendering to stderr, so stdout
// stays valid JSON or YAML for whoever pipes it.
func printErrors(cmd *cobra.Command, dir string, ds model.Diagnostics) {
	var b strings.Builder
	for _, d := range ds {
		if d.Severity == model.SeverityError {
			b.WriteString(formatDiagnostic(dir, d))
			b.WriteByte('\n')
		}
	}
	fmt.Fprint(cmd.ErrOrStderr(), b.String())
}
