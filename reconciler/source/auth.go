package source

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	fluxgit "github.com/fluxcd/pkg/git"
	"github.com/fluxcd/pkg/ssh/knownhosts"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/plumbing/transport/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Credentials says where the secrets for a Git remote live: files (a
// mounted Kubernetes Secret) or environment variables, named here. The
// values themselves never pass through argv or the URL, so they cannot
// leak through `ps`, shell history or logs. Files are re-read on every
// fetch, so a rotated secret is picked up without a restart.
type Credentials struct {
	// Username for HTTP basic auth ("git", "x-access-token", ...); for SSH
	// the URL's user or "git". A username is not a secret.
	Username string
	// PasswordFile / PasswordEnv: the HTTP password, or the passphrase of
	// an encrypted SSH key.
	PasswordFile, PasswordEnv string
	// TokenFile / TokenEnv: an HTTP bearer token (used instead of basic auth).
	TokenFile, TokenEnv string
	// SSHKeyFile / SSHKeyEnv: a PEM private key for ssh:// remotes.
	SSHKeyFile, SSHKeyEnv string
	// KnownHostsFile / KnownHostsEnv: known_hosts lines for ssh:// remotes.
	// Required with SSH: host keys are always verified.
	KnownHostsFile, KnownHostsEnv string
	// CAFile: extra PEM CA certificates for an https:// remote.
	CAFile string
}

// auth is what one fetch needs: the go-git auth method, a CA bundle, and
// the secret strings to scrub from any error text.
type auth struct {
	method  transport.AuthMethod
	ca      []byte
	secrets []string
}

// secretValue reads one secret from a file (one trailing newline trimmed,
// as `echo` and Kubernetes tooling add it) or from an environment variable.
func secretValue(file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read credential file: %w", err)
		}
		s := strings.TrimSuffix(string(b), "\n")
		return strings.TrimSuffix(s, "\r"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("credential environment variable %q is unset or empty", env)
		}
		return v, nil
	}
	return "", nil
}

// load turns the credential sources into go-git auth for the remote u. It
// goes through fluxcd/pkg/git's AuthOptions, which validates the
// combination per transport (a password needs a username, SSH needs a key
// and known_hosts); flux's own conversion to go-git auth is unexported, so
// the small conversion below mirrors it. Only the root fluxcd/pkg/git
// package is imported, on purpose: importing fluxcd/pkg/git/gogit runs an
// init() that rewrites go-git's transport.UnsupportedCapabilities for the
// whole process, which flux itself says breaks incremental fetches — and
// incremental fetches are what GitSource does.
func (c Credentials) load(u *url.URL, insecureHTTP bool) (auth, error) {
	var a auth
	data := map[string][]byte{}
	put := func(key, file, env string) error {
		v, err := secretValue(file, env)
		if err != nil {
			return err
		}
		if v != "" {
			data[key] = []byte(v)
			a.secrets = append(a.secrets, v)
		}
		return nil
	}
	for _, s := range []struct{ key, file, env string }{
		{"password", c.PasswordFile, c.PasswordEnv},
		{"bearerToken", c.TokenFile, c.TokenEnv},
		{"identity", c.SSHKeyFile, c.SSHKeyEnv},
		{"known_hosts", c.KnownHostsFile, c.KnownHostsEnv},
		{"caFile", c.CAFile, ""},
	} {
		if err := put(s.key, s.file, s.env); err != nil {
			return a, permanent(ErrConfig, err.Error())
		}
	}
	a.secrets = append(a.secrets, lines(data["identity"])...)
	if c.Username != "" && u.Scheme != "ssh" {
		data["username"] = []byte(c.Username)
	}
	switch u.Scheme {
	case "http", "https", "ssh":
	default:
		if len(data) > 0 {
			return a, permanent(ErrConfig, fmt.Sprintf("credentials are not used with %s:// remotes", u.Scheme))
		}
		return a, nil
	}
	if u.Scheme == "http" && !insecureHTTP && (data["password"] != nil || data["bearerToken"] != nil) {
		return a, permanent(ErrConfig, "refusing to send credentials over plain http:// (allow it explicitly for local development)")
	}
	if u.Scheme == "ssh" && len(data) == 0 {
		return a, permanent(ErrConfig, "ssh remotes need an SSH key and known_hosts (SSHKeyFile, KnownHostsFile)")
	}
	opts, err := fluxgit.NewAuthOptions(*u, data)
	if err != nil {
		return a, permanent(ErrConfig, scrub(fmt.Sprintf("credentials: %v", err), a.secrets))
	}
	a.ca = opts.CAFile
	switch opts.Transport {
	case fluxgit.HTTP, fluxgit.HTTPS:
		if opts.Username != "" || opts.Password != "" {
			a.method = &http.BasicAuth{Username: opts.Username, Password: opts.Password}
		} else if opts.BearerToken != "" {
			a.method = &http.TokenAuth{Token: opts.BearerToken}
		}
	case fluxgit.SSH:
		pk, err := ssh.NewPublicKeys(opts.Username, opts.Identity, opts.Password)
		if err != nil {
			return a, permanent(ErrConfig, scrub(fmt.Sprintf("ssh key: %v", err), a.secrets))
		}
		cb, algos, err := knownhosts.New(opts.KnownHosts)
		if err != nil {
			return a, permanent(ErrConfig, fmt.Sprintf("known_hosts: %v", err))
		}
		pk.HostKeyCallback = cb
		a.method = &sshAuth{PublicKeys: pk, algos: algos}
	}
	return a, nil
}

// lines lists the non-trivial lines of a PEM key, so a fragment of a key
// echoed in an error is scrubbed too.
func lines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); len(l) >= 16 && !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// sshAuth pins the host key algorithms to those in known_hosts, so the
// server cannot pick a key type we have no entry for and fail the check
// spuriously (the same fix flux applies).
type sshAuth struct {
	*ssh.PublicKeys
	algos []string
}

// ClientConfig implements ssh.AuthMethod.
func (a *sshAuth) ClientConfig() (*gossh.ClientConfig, error) {
	cfg, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	if len(a.algos) > 0 {
		cfg.HostKeyAlgorithms = a.algos
	}
	return cfg, nil
}

// parseRemote accepts https://, http://, ssh://, git://, file:// URLs,
// scp-style "user@host:path" and plain paths. It refuses credentials in the
// URL: a password or token there ends up in logs, status and `ps` output.
// Only SSH may name a user (it is not a secret there: "git@").
func parseRemote(raw string) (u *url.URL, display string, err error) {
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, "", permanent(ErrConfig, fmt.Sprintf("parse repository URL: %v", redactURL(raw)))
	}
	if ep.Password != "" || (ep.User != "" && ep.Protocol != "ssh") {
		return nil, "", permanent(ErrCredentialInURL, fmt.Sprintf(
			"repository URL %q must not carry credentials; give them with a password, token or key file or environment variable",
			redactURL(raw)))
	}
	switch ep.Protocol {
	case "https", "http", "ssh", "git", "file":
	default:
		return nil, "", permanent(ErrConfig, fmt.Sprintf("unsupported repository URL scheme %q", ep.Protocol))
	}
	u, err = url.Parse(ep.String())
	if err != nil {
		return nil, "", permanent(ErrConfig, fmt.Sprintf("parse repository URL %q: %v", redactURL(raw), err))
	}
	display = ep.String()
	if ep.Protocol == "file" && !strings.HasPrefix(raw, "file://") {
		display = raw
	}
	return u, display, nil
}

// redactURL removes the userinfo of a URL-looking string for messages.
func redactURL(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			return raw[:i+3] + "REDACTED@" + rest[at+1:]
		}
		return raw
	}
	if at := strings.Index(raw, "@"); at >= 0 && strings.Contains(raw[at:], ":") {
		return "REDACTED" + raw[at:]
	}
	return raw
}
