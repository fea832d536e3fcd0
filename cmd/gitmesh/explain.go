package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/check"
	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/render/traffic"
	"github.com/gitmesh/gitmesh/schema/model"
)

func newExplainCmd(_ *globalFlags) *cobra.Command {
	var (
		from, revision, dir, output string
		headers                     []string
		principal                   string
		load                        loadFlags
	)
	cmd := &cobra.Command{
		Use:   "explain --from CLASS 'METHOD URL [-H NAME:VALUE]...'",
		Short: "Show the path a request takes through the rendered Envoy config, hop by hop",
		Long: `explain runs the mesh repository in --dir (default: the current directory;
with --revision REV, as it is at that Git revision) through the pipeline
validate runs, then sends one request from proxy class --from through the
rendered Envoy configuration, as traffic tests do, and prints every hop:
capture, listener, filter chain, TLS, HTTP connection manager, virtual host,
route and its match, faults, timeout and retries, cluster, endpoints, then
the destination's side (its filter chain and RBAC decision), each with the
position in the repository that produced it.

The request is "METHOD URL" ("GET http://reviews:9080/reviews/1") or
"tcp://HOST:PORT", optionally followed by -H NAME:VALUE headers; --header
does the same outside the quotes. --principal sends the request with
another SPIFFE identity (to see what a service's authorization does to a
caller).

Exit status: 0 when the request could be explained (whatever happens to
it), 1 when the mesh has errors that stop it rendering, 2 for usage or
internal errors.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := parseExplainRequest(args[0], headers)
			if err != nil {
				return usageError("%v", err)
			}
			req.Principal = principal
			if from == "" {
				return usageError("--from is required (a proxy class, like sidecar/default/productpage/v1)")
			}
			opts, err := load.options()
			if err != nil {
				return err
			}
			defer load.close()
			in := pipeline.Input{Load: opts}
			rev := "directory " + dir
			if revision != "" {
				fsys, commit, err := check.RevisionFS(dir, revision)
				if err != nil {
					return usageError("--revision: %v", err)
				}
				in.Files, rev = fsys, "revision "+revision+" ("+commit[:12]+")"
			} else {
				if _, err := meshDir([]string{dir}); err != nil {
					return err
				}
				in.Dir = dir
			}
			res := pipeline.Run(cmd.Context(), in)
			if res.Err != nil {
				return internalError(res.Err)
			}
			if res.Bundle == nil {
				for _, d := range res.Errors() {
					fmt.Fprintln(cmd.ErrOrStderr(), formatDiagnostic(dir, d))
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: does not render, nothing to explain\n", rev)
				return errFindings
			}
			w := traffic.NewWorld(res.Mesh, res.Render.Addresses, res.Render.Endpoints)
			o, err := traffic.Evaluate(traffic.BundleConfigs(res.Bundle), w, from, req)
			if err != nil {
				return usageError("%v", err)
			}
			placeHops(o, res.Mesh, dir)
			return writeExplain(cmd.OutOrStdout(), output, explainReport{From: from, Request: args[0], Revision: rev, Outcome: o})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the proxy class the request leaves from (sidecar/NS/SVC/VER, proxyless/NS/SVC/VER, ingress/GW, egress/GW)")
	cmd.Flags().StringVar(&dir, "dir", ".", "the mesh repository directory")
	cmd.Flags().StringVar(&revision, "revision", "", "explain the mesh as it is at this Git revision (default: the files in --dir)")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "a request header NAME:VALUE (repeatable)")
	cmd.Flags().StringVar(&principal, "principal", "", "the SPIFFE id the caller presents (default: the identity of --from)")
	outputFlag(cmd, &output, "text", "json")
	load.register(cmd)
	return cmd
}

// parseExplainRequest reads "METHOD URL [-H NAME:VALUE]..." plus the
// --header flags.
func parseExplainRequest(s string, extra []string) (traffic.Request, error) {
	fields := strings.Fields(s)
	var head, hs []string
	for i := 0; i < len(fields); i++ {
		if fields[i] == "-H" || fields[i] == "--header" {
			if i+1 == len(fields) {
				return traffic.Request{}, fmt.Errorf("request %q: -H needs NAME:VALUE", s)
			}
			hs = append(hs, fields[i+1])
			i++
			continue
		}
		head = append(head, fields[i])
	}
	r, err := model.ParseRequest(strings.Join(head, " "))
	if err != nil {
		return traffic.Request{}, fmt.Errorf("request %q: %w", s, err)
	}
	req := traffic.Request{Request: r, Headers: map[string]string{}}
	for _, h := range append(hs, extra...) {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return traffic.Request{}, fmt.Errorf("header %q: want NAME:VALUE", h)
		}
		req.Headers[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
	}
	return req, nil
}

// placeHops fills each hop's position from its model path, joined to the
// directory the user named as validate prints findings.
func placeHops(o *traffic.Outcome, m *model.Mesh, dir string) {
	for i := range o.Hops {
		if o.Hops[i].Origin == "" {
			continue
		}
		p := m.Sources.Lookup(o.Hops[i].Origin)
		if !p.IsValid() {
			continue
		}
		o.Hops[i].Pos = dirPos(dir, p).String()
	}
}

// explainReport is explain's JSON form.
type explainReport struct {
	From     string           `json:"from"`
	Request  string           `json:"request"`
	Revision string           `json:"revision"`
	Outcome  *traffic.Outcome `json:"outcome"`
}

func writeExplain(w io.Writer, format string, r explainReport) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			return internalError(err)
		}
		return nil
	}
	_, err := fmt.Fprintf(w, "%s from %s (%s)\n%s", r.Request, r.From, r.Revision, traffic.Text(r.Outcome))
	if err != nil {
		return internalError(err)
	}
	return nil
}
