package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

const secret = "hook-s3cret"

func sign(body, key string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

const push = `{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567"}`

func TestHandlers(t *testing.T) {
	big := strings.Repeat("x", DefaultMaxBody+1)
	for _, tc := range []struct {
		name     string
		path     string
		method   string
		body     string
		headers  map[string]string
		secret   string // "" means the configured secret
		noSecret bool
		want     int
	}{
		// GitHub
		{name: "github push", path: "/hooks/github", body: push, headers: map[string]string{"X-Hub-Signature-256": sign(push, secret), "X-GitHub-Event": "push"}, want: 202},
		{name: "github ping", path: "/hooks/github", body: `{"zen":"hi"}`, headers: map[string]string{"X-Hub-Signature-256": sign(`{"zen":"hi"}`, secret), "X-GitHub-Event": "ping"}, want: 200},
		{name: "github unsigned ping", path: "/hooks/github", body: `{"zen":"hi"}`, headers: map[string]string{"X-GitHub-Event": "ping"}, want: 401},
		{name: "github wrong secret", path: "/hooks/github", body: push, headers: map[string]string{"X-Hub-Signature-256": sign(push, "other")}, want: 401},
		{name: "github body changed", path: "/hooks/github", body: push + " ", headers: map[string]string{"X-Hub-Signature-256": sign(push, secret)}, want: 401},
		{name: "github missing signature", path: "/hooks/github", body: push, want: 401},
		{name: "github sha1 only", path: "/hooks/github", body: push, headers: map[string]string{"X-Hub-Signature": "sha1=00"}, want: 401},
		{name: "github not hex", path: "/hooks/github", body: push, headers: map[string]string{"X-Hub-Signature-256": "sha256=zz"}, want: 401},
		{name: "github bare hex", path: "/hooks/github", body: push, headers: map[string]string{"X-Hub-Signature-256": strings.TrimPrefix(sign(push, secret), "sha256=")}, want: 401},
		{name: "github GET", path: "/hooks/github", method: "GET", want: 405},
		{name: "github too large", path: "/hooks/github", body: big, headers: map[string]string{"X-Hub-Signature-256": sign(big, secret)}, want: 413},
		{name: "github no secret configured", path: "/hooks/github", body: push, headers: map[string]string{"X-Hub-Signature-256": sign(push, "")}, noSecret: true, want: 401},
		// GitLab
		{name: "gitlab push", path: "/hooks/gitlab", body: push, headers: map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}, want: 202},
		{name: "gitlab wrong token", path: "/hooks/gitlab", body: push, headers: map[string]string{"X-Gitlab-Token": secret + "x"}, want: 401},
		{name: "gitlab prefix of token", path: "/hooks/gitlab", body: push, headers: map[string]string{"X-Gitlab-Token": secret[:4]}, want: 401},
		{name: "gitlab missing token", path: "/hooks/gitlab", body: push, want: 401},
		{name: "gitlab empty token, no secret", path: "/hooks/gitlab", body: push, headers: map[string]string{"X-Gitlab-Token": ""}, noSecret: true, want: 401},
		{name: "gitlab PUT", path: "/hooks/gitlab", method: "PUT", want: 405},
		// Generic
		{name: "generic hmac", path: "/hooks/generic", body: push, headers: map[string]string{"X-Gitmesh-Signature": sign(push, secret)}, want: 202},
		{name: "generic bearer", path: "/hooks/generic", body: "", headers: map[string]string{"Authorization": "Bearer " + secret}, want: 202},
		{name: "generic bearer lower case", path: "/hooks/generic", headers: map[string]string{"Authorization": "bearer " + secret}, want: 202},
		{name: "generic wrong bearer", path: "/hooks/generic", headers: map[string]string{"Authorization": "Bearer nope"}, want: 401},
		{name: "generic basic auth", path: "/hooks/generic", headers: map[string]string{"Authorization": "Basic " + secret}, want: 401},
		{name: "generic bad hmac", path: "/hooks/generic", body: push, headers: map[string]string{"X-Gitmesh-Signature": sign(push, "x")}, want: 401},
		{name: "generic nothing", path: "/hooks/generic", body: push, want: 401},
		{name: "generic too large", path: "/hooks/generic", body: big, headers: map[string]string{"Authorization": "Bearer " + secret}, want: 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			cfg := Config{Secret: []byte(secret), Trigger: func() { calls.Add(1) }}
			if tc.noSecret {
				cfg.Secret = nil
			}
			mux := http.NewServeMux()
			Register(mux, cfg)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, tc.path, strings.NewReader(tc.body))
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.want, rec.Body)
			}
			wantCalls := int32(0)
			if tc.want == http.StatusAccepted {
				wantCalls = 1
			}
			if calls.Load() != wantCalls {
				t.Fatalf("Trigger called %d times, want %d", calls.Load(), wantCalls)
			}
			if tc.want == 405 && rec.Header().Get("Allow") != "POST" {
				t.Fatalf("405 without Allow: POST")
			}
		})
	}
}

// TestOverHTTP drives the handlers through a real server and a Signal,
// checking that many pushes coalesce into one pending trigger and that
// the server does not block on an unread signal.
func TestOverHTTP(t *testing.T) {
	sig := NewSignal()
	mux := http.NewServeMux()
	Register(mux, Config{Secret: []byte(secret), Trigger: sig.Notify})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/github", bytes.NewBufferString(push))
		req.Header.Set("X-Hub-Signature-256", sign(push, secret))
		req.Header.Set("X-GitHub-Event", "push")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("push %d: status %d", i, resp.StatusCode)
		}
	}
	if len(sig) != 1 {
		t.Fatalf("%d pending signals, want 1", len(sig))
	}
	<-sig
	select {
	case <-sig:
		t.Fatal("second signal pending")
	default:
	}
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	const long = "0123456789abcdef" // MinSecretLen bytes
	for _, tc := range []struct {
		name, content, want string
		mode                os.FileMode
		wantErr             string
	}{
		{"newline trimmed once", long + "\n", long, 0o600, ""},
		{"crlf", long + "\r\n", long, 0o600, ""},
		{"only one newline", long + "\n\n", long + "\n", 0o600, ""},
		{"no newline", long, long, 0o600, ""},
		{"owner read only", long, long, 0o400, ""},
		{"empty", "\n", "", 0o600, "is empty"},
		{"two bytes", "ab\n", "", 0o600, "2 bytes long; want at least 16"},
		{"padded with spaces", "   abc          \n", "", 0o600, "3 bytes long"},
		{"world readable", long, "", 0o644, "readable by others (mode 0644); chmod 600"},
		{"group readable", long, "", 0o640, "readable by others (mode 0640)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			os.WriteFile(p, []byte(tc.content), 0o600)
			os.Chmod(p, tc.mode)
			got, err := LoadSecret(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("LoadSecret = %q, %v; want an error naming %s containing %q", got, err, p, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("LoadSecret = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := LoadSecret(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
}
