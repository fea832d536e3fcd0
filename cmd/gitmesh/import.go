package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/istioimport"
)

// newImportCmd is `gitmesh import`: converters from other meshes' config.
func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert another mesh's configuration into a gitmesh repository",
	}
	cmd.AddCommand(newImportIstioCmd())
	return cmd
}

// importFlags are the flags of `gitmesh import istio`.
type importFlags struct {
	out, report string
	force       bool
	opts        istioimport.Options
}

func newImportIstioCmd() *cobra.Command {
	var fl importFlags
	cmd := &cobra.Command{
		Use:   "istio FILE|DIR|- ... --out DIR",
		Short: "Convert Istio YAML into a gitmesh repository, with a report of what was lost",
		Long: `istio reads Istio networking.istio.io (v1, v1beta1, v1alpha3) VirtualService,
DestinationRule, Gateway, ServiceEntry and Sidecar objects, security.istio.io
PeerAuthentication and AuthorizationPolicy objects, Kubernetes v1 Services (for
ports and selectors) and Deployments, StatefulSets and DaemonSets (for service
accounts), from files, directories (every *.yaml and *.yml, recursively) or
standard input ("-"), and writes a gitmesh repository to --out: mesh.cue,
services/, gateways/, external/, and tests/generated.cue with traffic tests
generated from the VirtualServices' matches.

Every field that gitmesh cannot express, or expresses differently, is a line
of the report (--report, default OUT/import-report.txt) with its source
file:line:col. Other kinds are reported and skipped.

Exit status: 0 when something was converted, 1 when nothing could be, 2 for
usage or internal errors (an unreadable input, a non-empty --out without
--force).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImportIstio(cmd, args, fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.out, "out", "", "directory to write the gitmesh repository to (required)")
	f.StringVar(&fl.report, "report", "", "file to write the report to (default OUT/import-report.txt)")
	f.BoolVar(&fl.force, "force", false, "write into a non-empty --out, overwriting files of the same names (other files stay)")
	f.StringVar(&fl.opts.Namespace, "namespace", "default", "namespace of objects whose metadata names none")
	f.StringVar(&fl.opts.RootNamespace, "root-namespace", "istio-system", "Istio's root namespace: policies there without selector apply to the whole mesh")
	f.StringVar(&fl.opts.TrustDomain, "trust-domain", "cluster.local", "SPIFFE trust domain of the mesh")
	f.StringVar(&fl.opts.ClusterDomain, "cluster-domain", "cluster.local", "DNS suffix of Kubernetes service hosts")
	f.StringVar(&fl.opts.MeshName, "mesh-name", "mesh", "name of the mesh (mesh.name)")
	f.IntVar(&fl.opts.DefaultPort, "default-port", 80, "port of a service whose ports nothing in the input names")
	flagMax(cmd, "default-port", "65535")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func runImportIstio(cmd *cobra.Command, args []string, fl importFlags) error {
	srcs, err := readImportSources(args, cmd.InOrStdin())
	if err != nil {
		return err
	}
	if err := checkOut(fl.out, fl.force); err != nil {
		return err
	}
	res := istioimport.Convert(srcs, fl.opts)
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if res.Converted == 0 {
		// Nothing to write: the report says why, on stderr.
		stderr.Write(res.Report.Text())
		return &exitError{code: exitFindings, err: fmt.Errorf("nothing in %s could be converted", strings.Join(args, ", "))}
	}
	paths := slices.Sorted(maps.Keys(res.Files))
	for _, p := range paths {
		full := filepath.Join(fl.out, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return internalError(err)
		}
		if err := os.WriteFile(full, res.Files[p], 0o644); err != nil {
			return internalError(err)
		}
	}
	report := fl.report
	if report == "" {
		report = filepath.Join(fl.out, "import-report.txt")
	}
	if err := os.WriteFile(report, res.Report.Text(), 0o644); err != nil {
		return internalError(err)
	}
	r := res.Report
	fmt.Fprintf(stdout, "%s: %s from %s, %s\n", fl.out, plural(len(paths), "file"), plural(res.Converted, "object"), plural(res.Tests, "traffic test"))
	fmt.Fprintf(stdout, "%s: %d dropped, %d approximated, %d skipped, %s, %d routes without a test\n",
		report, r.Count(istioimport.Dropped), r.Count(istioimport.Approximated), r.Count(istioimport.Skipped),
		plural(r.Count(istioimport.Note), "note"), r.Count(istioimport.NoTest))
	return nil
}

// readImportSources reads the arguments: "-" is standard input, a
// directory every *.yaml and *.yml below it (sorted), anything else a
// file. Report lines name files as given.
func readImportSources(args []string, stdin io.Reader) ([]istioimport.Source, error) {
	var srcs []istioimport.Source
	for _, a := range args {
		if a == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, internalError(fmt.Errorf("stdin: %w", err))
			}
			srcs = append(srcs, istioimport.Source{Name: "stdin", Data: b})
			continue
		}
		st, err := os.Stat(a)
		if err != nil {
			return nil, usageError("%s: no such file or directory", a)
		}
		if !st.IsDir() {
			b, err := os.ReadFile(a)
			if err != nil {
				return nil, internalError(err)
			}
			srcs = append(srcs, istioimport.Source{Name: filepath.ToSlash(a), Data: b})
			continue
		}
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := filepath.Ext(p); d.Type().IsRegular() && (ext == ".yaml" || ext == ".yml") {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				srcs = append(srcs, istioimport.Source{Name: filepath.ToSlash(p), Data: b})
			}
			return nil
		})
		if err != nil {
			return nil, internalError(err)
		}
	}
	if len(srcs) == 0 {
		return nil, usageError("%s: no *.yaml or *.yml files", strings.Join(args, ", "))
	}
	return srcs, nil
}

// checkOut refuses a non-empty output directory unless forced: an import
// must not mix with what is already there by accident.
func checkOut(out string, force bool) error {
	es, err := os.ReadDir(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return usageError("--out %s: %v", out, err)
	case len(es) > 0 && !force:
		return usageError("--out %s: directory is not empty (use --force to write into it)", out)
	}
	return nil
}
