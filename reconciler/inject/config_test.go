package inject

import (
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/gitmesh/gitmesh/internal/golden"
)

// TestWebhookConfigurationGolden pins the object serve creates, which the
// install manifests (deploy/) must agree with.
func TestWebhookConfigurationGolden(t *testing.T) {
	out, err := yaml.Marshal(WebhookConfiguration(ConfigOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "out", "webhook-configuration.yaml"), out)
	wc := WebhookConfiguration(ConfigOptions{URL: "https://127.0.0.1:15017/inject", CABundle: []byte("pem")})
	for _, h := range wc.Webhooks {
		if h.ClientConfig.Service != nil || *h.ClientConfig.URL != "https://127.0.0.1:15017/inject" || string(h.ClientConfig.CABundle) != "pem" {
			t.Errorf("%s: client config %+v", h.Name, h.ClientConfig)
		}
	}
}
