package kube

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig finds how to reach Kubernetes, the way kubectl and controllers
// do, so gitmesh needs no flags inside a cluster and only --kubeconfig
// outside one:
//   - kubeconfig != "": that file (its current context);
//   - else the in-cluster service account, when running in a Pod;
//   - else $KUBECONFIG or ~/.kube/config (client-go's loading rules).
//
// Errors name the file they come from.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
		cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
		}
		return withUserAgent(cfg), nil
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return withUserAgent(cfg), nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		files := strings.Join(rules.GetLoadingPrecedence(), string(rulesSeparator))
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("not running in a cluster and no kubeconfig at %s: pass --kubeconfig", files)
		}
		return nil, fmt.Errorf("load kubeconfig %s: %w", files, err)
	}
	return withUserAgent(cfg), nil
}

// rulesSeparator joins the kubeconfig paths in messages as $KUBECONFIG does.
const rulesSeparator = ':'

// withUserAgent names gitmesh in the API server's audit log and metrics.
func withUserAgent(cfg *rest.Config) *rest.Config {
	if cfg.UserAgent == "" {
		cfg.UserAgent = "gitmesh"
	}
	return cfg
}
