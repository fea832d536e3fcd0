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
		Use:   "render [DIR] (--list | --proxy ID)",
		Short: "Render a mesh repository into Envoy configuration",
		Long: `render runs the mesh repository in DIR (default: the current directory)
through the same pipeline as validate and serve, and prints the Envoy
resources each proxy receives (Git's endpoints; gateway credentials are
trusted by name, see gitmesh validate).

--list prints the proxy classes (sidecar/NS/SVC/VER, proxyless/NS/SVC/VER,
ingress/GW, egress/GW). --proxy prints one proxy's resources in the shape of
Envoy's /config_dump; it takes a class or a full node id (CLASS/INSTANCE).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if list == (proxy != "") {
				return usageError("render: set exactly one of --list or --proxy ID")
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
	outputFlag(cmd, &output, "json", "yaml")
	load.register(cmd)
	return cmd
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
