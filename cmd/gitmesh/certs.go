package main

import (
	"context"
	"errors"
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

// minWorkloadTTL is the shortest lifetime gitmesh issues a certificate
// for (serve --workload-cert-ttl, certs issue --ttl). A certificate is
// renewed when a third of its lifetime is left (ca.Issued.RenewAt), and
// every renewal re-signs and re-pushes the SDS secrets of every proxy of
// the class: at 10m that is one rotation every ~6.7m with over 3m for a
// proxy that missed a push (a reconnect with backoff, a restart) to catch
// up before its certificate expires. Shorter lifetimes turn the control
// plane into a rotation loop (a 1s TTL made 44 rotations in 8s) and leave
// no margin at all, against a clock skew allowance of 1m.
const minWorkloadTTL = 10 * time.Minute

// workloadTTLMin applies minWorkloadTTL to a TTL flag.
func workloadTTLMin(cmd *cobra.Command, name string) {
	flagMin(cmd, name, minWorkloadTTL.String(),
		"shorter certificates leave a proxy that misses one push no time to get the next before expiry")
}

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

// open opens the CA the flags name, which must exist: certs commands never
// create one (a mistyped --state-dir would otherwise become a new root
// nobody trusts); `certs init` or the first `serve` creates it.
func (f *caFlags) open() (*ca.CA, error) {
	c, err := caOptions(f.stateDir, f.cert, f.key, f.chain, f.workloadTTL, true)
	if errors.Is(err, ca.ErrNoRoot) {
		return nil, usageError("--state-dir: no CA in %q (%v); create one with `gitmesh certs init --state-dir %s`, or start gitmesh serve on it", f.stateDir, err, f.stateDir)
	}
	return c, err
}

// newCA opens the CA the way serve does, so `certs` and `serve` on one
// state dir are the same authority. serve creates the self-signed root on
// its first start (documented in the README), so a fresh state dir works.
func newCA(stateDir, cert, key, chain string, ttl time.Duration) (*ca.CA, error) {
	return caOptions(stateDir, cert, key, chain, ttl, false)
}

func caOptions(stateDir, cert, key, chain string, ttl time.Duration, mustExist bool) (*ca.CA, error) {
	c, err := ca.New(ca.Options{Dir: filepath.Join(stateDir, "ca"), CertFile: cert, KeyFile: key, ChainFile: chain,
		WorkloadTTL: ttl, MustExist: mustExist})
	if errors.Is(err, ca.ErrNoRoot) {
		return nil, err
	}
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
--state-dir, or the same plug-in CA files). Only certs init creates a CA
(gitmesh serve also does on its first start); issue, root and rotate-root
refuse a --state-dir without one.`,
	}
	cmd.AddCommand(newCertsInitCmd(), newCertsIssueCmd(g), newCertsRootCmd(), newCertsRotateRootCmd())
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
			authority, err := cf.open()
			if err != nil {
				return err
			}
			m, err := loadMeshFrom(cmd.Context(), dir, repo, branch, path, &load)
			if err != nil {
				return err
			}
			id, err := render.Identity(m, class.Name)
			if err != nil {
				return usageError("--proxy: %v", err)
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
	f.DurationVar(&ttl, "ttl", ca.DefaultWorkloadTTL, "lifetime of the certificate (at least "+minWorkloadTTL.String()+")")
	workloadTTLMin(cmd, "ttl")
	cf.register(cmd)
	load.register(cmd)
	cmd.MarkFlagRequired("proxy")
	return cmd
}

// loadMeshFrom loads and checks a mesh from a directory or a Git URL.
func loadMeshFrom(ctx context.Context, dir, repo, branch, path string, load *loadFlags) (*model.Mesh, error) {
	opts, err := load.options()
	if err != nil {
		return nil, err
	}
	defer load.close()
	in := pipeline.Input{Dir: dir, Load: opts}
	if dir == "" {
		files, err := fetchRepo(ctx, repo, branch, path, load.maxRepoSize)
		if err != nil {
			return nil, err
		}
		in = pipeline.Input{Files: files, Load: opts}
	}
	res := pipeline.Run(ctx, in)
	if res.Err != nil {
		return nil, internalError(res.Err)
	}
	if !res.OK() || res.Mesh == nil {
		return nil, usageError("the mesh has errors (run gitmesh validate): %s", res.Summary())
	}
	return res.Mesh, nil
}

func fetchRepo(ctx context.Context, repo, branch, path string, maxRepoSize int64) (fs.FS, error) {
	cache, err := os.MkdirTemp("", "gitmesh-certs-")
	if err != nil {
		return nil, internalError(err)
	}
	defer os.RemoveAll(cache)
	g, err := source.NewGit(source.GitOptions{URL: repo, Branch: branch, Path: path, CacheDir: cache, MaxFetchSize: maxRepoSize})
	if err != nil {
		return nil, usageError("--repo: %v", err)
	}
	rev, err := g.Latest(ctx)
	if err != nil {
		return nil, usageError("--repo: %v", err)
	}
	return rev.Files, nil
}

func newCertsInitCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "init --state-dir DIR",
		Short: "Create the mesh's self-signed root CA in a state directory",
		Long: `init generates the self-signed root CA in --state-dir/ca (key 0600), the
one gitmesh serve on that state dir signs with. serve creates it on its
first start too; init is for preparing a state dir, and bootstrap
certificates, before serve runs. An existing CA is kept as it is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := filepath.Join(stateDir, "ca")
			if _, err := caOptions(stateDir, "", "", "", 0, true); err == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%s already holds a CA; kept it\n", dir)
				return nil
			} else if !errors.Is(err, ca.ErrNoRoot) {
				return err
			}
			if _, err := newCA(stateDir, "", "", "", 0); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created a self-signed root CA in %s\n", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", ".gitmesh-state", "serve's state directory (the root goes in its ca/ folder)")
	return cmd
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
