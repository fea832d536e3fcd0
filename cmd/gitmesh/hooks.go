package main

import (
	"log/slog"
	"net/http"

	"github.com/gitmesh/gitmesh/reconciler/webhook"
)

// newHooks builds the push webhooks from the secret file. Without a file
// the webhooks are off (404); with one, they verify signatures and can only
// ask for a fetch.
func newHooks(secretFile string, trigger func(), log *slog.Logger) (http.Handler, error) {
	if secretFile == "" {
		return nil, nil
	}
	secret, err := webhook.LoadSecret(secretFile)
	if err != nil {
		return nil, usageError("serve: --webhook-secret-file: %v", err)
	}
	mux := http.NewServeMux()
	webhook.Register(mux, webhook.Config{Secret: secret, Trigger: trigger, Logger: log})
	return mux, nil
}
