package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/reconciler/agent"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema/model"
)

// caFlags select the same CA serve uses: the self-signed root under
// --state-dir/ca, or a plug-in intermediate.
type caFlags struct {
	stateDir         string
	cert, key, chain string
	workloadTTL      time.Duration
}

func (f *caFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.stateDir, "state-dir", ".gitmesh-state", "serve's state directory (the self-signed root is in its ca/ folder)")
	cmd.Flags().StringVar(&f.cert, "ca-cert", "", "plug-in CA: intermediate CA certificate, as given to serve")
	cmd.Flags().StringVar(&f.key, "ca-key", "", "plug-in CA: the intermediate's private key")
	cmd.Flags().StringVar(&f.chain, "ca-chain", "", "plug-in CA: the chain up to the root")
}

func (f *caFlags) open() (*ca.CA, error) {
	return newCA(f.stateDir, f.cert, f.key, f.chain, f.workloadTTL)
}

// newCA opens the CA the way serve does, so `certs` and `serve` on one
// state dir are the same authority.
func newCA(stateDir, cert, key, chain string, ttl time.Duration) (*ca.CA, error) {
	c, err := ca.New(ca.Options{Dir: filepath.Join(stateDir, "ca"), CertFile: cert, KeyFile: key, ChainFile: chain, WorkloadTTL: ttl})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return c, nil
}

func newCertsCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Issue proxy bootstrap certificates and show the mesh's trust bundle",
		Long: `certs works with the certificate authority gitmesh serve uses (the same
--state-dir, or the same plug-in CA files).`,
	}
	cmd.AddCommand(newCertsIssueCmd(g), newCertsRootCmd(), newCertsRotateRootCmd())
	return cmd
}

func newCertsIssueCmd(g *globalFlags) *cobra.Command {
	var (
		cf                 caFlags
		nodeID, dir, out   string
		repo, branch, path string
		ttl                time.Duration
		load               loadFlags
	)
	cmd := &cobra.Command{
		Use:   "issue --proxy ID (--dir MESH | --repo URL) --out DIR",
		Short: "Issue a proxy's bootstrap client certificate",
		Long: `issue writes DIR/cert.pem, DIR/key.pem (mode 0600) and DIR/ca.pem for one
proxy: a certificate whose SPIFFE id is the identity of the proxy's class in
the mesh, which is what the xDS port admits it by. Point the proxy's
bootstrap at them (gitmesh bootstrap --tls --cert --key --ca), or give them
to gitmesh agent, which keeps them rotated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			class, _, err := nodeid.Parse(nodeID)
			if err != nil {
				return usageError("--proxy: %v", err)
			}
			if (dir == "") == (repo == "") {
				return usageError("certs issue: set exactly one of --dir MESH or --repo URL")
			}
			if out == "" {
				return usageError("certs issue: --out DIR is required")
			}
			m, err := loadMeshFrom(cmd.Context(), dir, repo, branch, path, load)
			if err != nil {
				return err
			}
			id, err := render.Identity(m, class.Name)
			if err != nil {
				return usageError("--proxy: %v", err)
			}
			authority, err := cf.open()
			if err != nil {
				return err
			}
			is, err := authority.Issue(id, ttl)
			if err != nil {
				return internalError(err)
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return internalError(err)
			}
			for _, f := range []struct {
				name string
				data []byte
				perm os.FileMode
			}{
				{agent.CAFile, authority.TrustBundle(), 0o644},
				{agent.KeyFile, is.KeyPEM, 0o600},
				{agent.CertFile, is.CertPEM, 0o644},
			} {
				if err := ca.WriteFileAtomic(filepath.Join(out, f.name), f.data, f.perm); err != nil {
					return internalError(fmt.Errorf("write %s: %w", f.name, err))
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %s for %s, valid until %s\nwrote %s, %s, %s\n", id, nodeID,
				is.NotAfter.UTC().Format(time.RFC3339), filepath.Join(out, agent.CertFile), filepath.Join(out, agent.KeyFile), filepath.Join(out, agent.CAFile))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&nodeID, "proxy", "", "node id: CLASS/INSTANCE (required)")
	f.StringVar(&dir, "dir", "", "mesh repository directory")
	f.StringVar(&repo, "repo", "", "Git URL of the mesh repository")
	f.StringVar(&branch, "branch", "main", "branch (with --repo)")
	f.StringVar(&path, "path", "", "directory of the mesh inside the repository (with --repo)")
	f.StringVar(&out, "out", "", "directory to write cert.pem, key.pem and ca.pem to")
	f.DurationVar(&ttl, "ttl", 24*time.Hour, "lifetime of the certificate")
	cf.register(cmd)
	load.register(cmd)
	cmd.MarkFlagRequired("proxy")
	return cmd
}

// loadMeshFrom loads and checks a mesh from a directory or a Git URL.
func loadMeshFrom(ctx context.Context, dir, repo, branch, path string, load loadFlags) (*model.Mesh, error) {
	var (
		m     *model.Mesh
		diags model.Diagnostics
		err   error
	)
	if dir != "" {
		m, diags, err = pipeline.ValidateDir(ctx, dir, load.options())
	} else {
		var files fs.FS
		files, err = fetchRepo(ctx, repo, branch, path)
		if err != nil {
			return nil, err
		}
		m, diags, err = pipeline.Validate(ctx, files, load.options())
	}
	if err != nil {
		return nil, internalError(err)
	}
	if diags.HasErrors() || m == nil {
		return nil, usageError("the mesh has errors (run gitmesh validate); first: %s", firstErrorOf(diags))
	}
	return m, nil
}

func fetchRepo(ctx context.Context, repo, branch, path string) (fs.FS, error) {
	cache, err := os.MkdirTemp("", "gitmesh-certs-")
	if err != nil {
		return nil, internalError(err)
	}
	defer os.RemoveAll(cache)
	g, err := source.NewGit(source.GitOptions{URL: repo, Branch: branch, Path: path, CacheDir: cache})
	if err != nil {
		return nil, usageError("--repo: %v", err)
	}
	rev, err := g.Latest(ctx)
	if err != nil {
		return nil, usageError("--repo: %v", err)
	}
	return rev.Files, nil
}

func firstErrorOf(ds model.Diagnostics) string {
	for _, d := range ds {
		if d.Severity == model.SeverityError {
			return d.Error()
		}
	}
	return "none"
}

func newCertsRootCmd() *cobra.Command {
	var cf caFlags
	cmd := &cobra.Command{
		Use:   "root",
		Short: "Print the mesh's trust bundle (PEM)",
		Long: `root prints the root certificates proxies trust: the self-signed root (and
a rotated-out one during its overlap), or the root(s) of --ca-chain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			authority, err := cf.open()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(authority.TrustBundle())
			return err
		},
	}
	cf.register(cmd)
	return cmd
}

func newCertsRotateRootCmd() *cobra.Command {
	var (
		cf      caFlags
		overlap time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rotate-root",
		Short: "Replace the self-signed root, trusting the old one during an overlap",
		Long: `rotate-root generates a new self-signed root in --state-dir/ca. The old
root stays in the trust bundle for --overlap, so certificates it signed keep
verifying while every proxy receives leaves of the new root. Restart gitmesh
serve on that state dir to start signing with the new root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			authority, err := cf.open()
			if err != nil {
				return err
			}
			if err := authority.RotateRoot(overlap); err != nil {
				return usageError("%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new root generated; the old one stays trusted until %s\n",
				time.Now().Add(overlap).UTC().Format(time.RFC3339))
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().DurationVar(&overlap, "overlap", ca.DefaultRootOverlap, "how long the old root stays trusted")
	return cmd
}
