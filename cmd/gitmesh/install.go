package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitmesh/gitmesh/internal/install"
	"github.com/gitmesh/gitmesh/reconciler/kube"
)

// installFlags are shared by install and uninstall (uninstall needs the
// options only to name the objects, which do not depend on them).
type installFlags struct {
	kubeconfig string
	timeout    time.Duration
	opts       install.Options
}

func (f *installFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG)")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up after this long")
	flagMin(cmd, "timeout", "1s", "")
}

// objects are the control plane's objects, in apply order.
func (f *installFlags) objects() ([]*unstructured.Unstructured, error) {
	objs, err := install.Unstructured(install.Objects(f.opts))
	if err != nil {
		return nil, internalError(err)
	}
	return objs, nil
}

func (f *installFlags) client() (*install.Client, error) {
	cfg, err := kube.RESTConfig(f.kubeconfig)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return install.NewClient(cfg)
}

func newInstallCmd() *cobra.Command {
	f := installFlags{opts: install.Defaults()}
	var (
		dryRun bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Apply gitmesh's control plane to a Kubernetes cluster (server-side apply)",
		Long: `install applies the control plane's objects (namespace gitmesh-system,
service account, RBAC, Deployment, PodDisruptionBudget, Service and the
sidecar injector's MutatingWebhookConfiguration) with server-side apply,
field manager "gitmesh", as istioctl install does. Running it again changes
nothing unless the objects changed; an upgrade is install with the new
--image. deploy/kustomize and deploy/helm/gitmesh hold the same objects.

It does not create the Secrets the Deployment reads: gitmesh-git (its keys
become the environment: GITMESH_REPO, credential flags), gitmesh-webhook
(key "secret") and gitmesh-ca (ca-cert.pem, ca-key.pem, ca-chain.pem).

--dry-run prints the objects (-o yaml or json) and contacts no cluster.
Flag values may also come from GITMESH_* variables.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annoEnv: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			objs, err := f.objects()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if dryRun {
				if output == "text" {
					for _, o := range objs {
						fmt.Fprintf(w, "%s would be applied\n", install.Ref(o))
					}
					return nil
				}
				return printObjects(w, output, objs)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			applied, err := c.Apply(ctx, objs)
			if err != nil {
				return internalError(fmt.Errorf("install: %w", err))
			}
			if output == "text" {
				for _, o := range applied {
					fmt.Fprintf(w, "%s applied (resourceVersion %s)\n", install.Ref(o), o.GetResourceVersion())
				}
				return nil
			}
			return printObjects(w, output, applied)
		},
	}
	f.register(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&dryRun, "dry-run", false, "print the objects instead of applying them")
	outputFlag(cmd, &output, "text", "yaml", "json")
	fs.StringVar(&f.opts.Image, "image", f.opts.Image, "gitmesh image the Deployment runs")
	fs.Int32Var(&f.opts.Replicas, "replicas", f.opts.Replicas, "replicas of the control plane (drift writing is leader-elected among them)")
	flagMin(cmd, "replicas", "1", "")
	describeEnv(fs)
	return cmd
}

func newUninstallCmd() *cobra.Command {
	f := installFlags{opts: install.Defaults()}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Delete what gitmesh install applied",
		Long: `uninstall deletes every object gitmesh install applies, the webhook
configuration first and the namespace last, and waits until each is gone.
Objects already gone are skipped, so it can be run again. The Secrets in
gitmesh-system go with the namespace.
Flag values may also come from GITMESH_* variables.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annoEnv: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			objs, err := f.objects()
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			deleted, err := c.Delete(ctx, objs)
			for _, o := range deleted {
				fmt.Fprintf(cmd.OutOrStdout(), "%s deleted\n", install.Ref(o))
			}
			if err != nil {
				return internalError(fmt.Errorf("uninstall: %w", err))
			}
			return nil
		},
	}
	f.register(cmd)
	describeEnv(cmd.Flags())
	return cmd
}

// printObjects writes objects as a YAML stream or as a JSON v1 List, both
// of which kubectl apply -f takes.
func printObjects(w io.Writer, output string, objs []*unstructured.Unstructured) error {
	if output == "json" {
		items := make([]map[string]any, len(objs))
		for i, o := range objs {
			items[i] = o.Object
		}
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	}
	y, err := install.YAML(objs)
	if err != nil {
		return internalError(err)
	}
	_, err = w.Write(y)
	return err
}
