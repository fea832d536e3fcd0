// Package webhook receives push notifications from Git hosts and turns a
// verified one into a trigger for the reconciler. Nothing in a payload is
// trusted or applied: a notification only says "look now", and the source
// then asks the Git remote itself what changed. So a forged or replayed
// request can at worst cause one cheap ls-remote, and an unverified one
// causes nothing at all.
package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/gitmesh/gitmesh/internal/private"
)

// DefaultMaxBody bounds a request body. GitHub caps payloads at 25 MB but
// push payloads for a config repository are a few KiB; verification needs
// the whole body in memory, so the bound protects the server.
const DefaultMaxBody = 1 << 20

// Config configures one endpoint.
type Config struct {
	// Secret is the shared secret. When empty the handler refuses every
	// request (401): a missing secret must not mean "accept unsigned".
	Secret []byte
	// Trigger is called once per verified push. It must not block; a
	// Signal's Notify is the intended value.
	Trigger func()
	// MaxBody bounds the request body; DefaultMaxBody when zero.
	MaxBody int64
	// Logger receives one line per request outcome; nil discards.
	Logger *slog.Logger
}

// MinSecretLen is the shortest webhook secret LoadSecret accepts, in bytes
// (not counting surrounding whitespace): 16 random bytes are out of reach
// of guessing through the webhook, which answers every bad signature.
const MinSecretLen = 16

// LoadSecret reads a webhook secret from a file, trimming one trailing
// newline (as `echo` and most secret tooling add one), so the secret
// never has to appear in argv or the environment. The file must be private
// to its owner, like the CA key (internal/private), and the secret at least
// MinSecretLen bytes long.
func LoadSecret(path string) ([]byte, error) {
	if err := private.CheckFile(path); err != nil {
		return nil, fmt.Errorf("webhook secret file %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read webhook secret: %w", err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return nil, fmt.Errorf("webhook secret file %s is empty", path)
	}
	if n := len(strings.TrimSpace(s)); n < MinSecretLen {
		return nil, fmt.Errorf("webhook secret in %s is %d bytes long; want at least %d (try: openssl rand -hex 32)", path, n, MinSecretLen)
	}
	return []byte(s), nil
}

// Signal coalesces triggers: Notify never blocks, and any number of
// notifications before the reconciler looks collapse into one.
type Signal chan struct{}

// NewSignal returns a Signal with room for one pending notification.
func NewSignal() Signal { return make(Signal, 1) }

// Notify records that a reconcile is wanted, without blocking.
func (s Signal) Notify() {
	select {
	case s <- struct{}{}:
	default:
	}
}

// Register mounts the three providers on mux under /hooks/ with one
// configuration; use the constructors directly for per-provider secrets.
func Register(mux *http.ServeMux, cfg Config) {
	mux.Handle("/hooks/github", GitHub(cfg))
	mux.Handle("/hooks/gitlab", GitLab(cfg))
	mux.Handle("/hooks/generic", Generic(cfg))
}

// provider is what differs between Git hosts: how a request proves it
// knows the secret, and which events to acknowledge without triggering.
type provider struct {
	name string
	// verify reports whether the request is authentic. It must compare in
	// constant time.
	verify func(r *http.Request, body, secret []byte) bool
	// ping reports whether the request is a connectivity check that is
	// answered 200 without triggering.
	ping func(r *http.Request) bool
	// event names the event for logs.
	event func(r *http.Request) string
}

type handler struct {
	p   provider
	cfg Config
	log *slog.Logger
}

func newHandler(p provider, cfg Config) http.Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{p: p, cfg: cfg, log: log.With("provider", p.name)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if len(h.cfg.Secret) == 0 {
		h.log.Warn("webhook refused: no secret configured", "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.log.Warn("webhook refused: body too large", "remote", r.RemoteAddr, "limit", h.cfg.MaxBody)
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read request body", http.StatusBadRequest)
		return
	}
	if !h.p.verify(r, body, h.cfg.Secret) {
		h.log.Warn("webhook refused: bad or missing signature", "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	event := h.p.event(r)
	if h.p.ping != nil && h.p.ping(r) {
		h.log.Info("webhook ping", "event", event)
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "pong\n")
		return
	}
	if h.cfg.Trigger != nil {
		h.cfg.Trigger()
	}
	ref, after := hint(body)
	h.log.Info("webhook accepted", "event", event, "ref", ref, "after", after)
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "accepted\n")
}

// hint extracts the pushed ref and new SHA for the log line only. They
// are never used to decide anything, and are cut to sane shapes so a
// payload cannot flood or forge log lines.
func hint(body []byte) (ref, after string) {
	var p struct {
		Ref         string `json:"ref"`
		After       string `json:"after"`
		CheckoutSHA string `json:"checkout_sha"`
	}
	if json.Unmarshal(body, &p) != nil {
		return "", ""
	}
	if p.After == "" {
		p.After = p.CheckoutSHA
	}
	return clean(p.Ref, 200), clean(p.After, 64)
}

func clean(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
