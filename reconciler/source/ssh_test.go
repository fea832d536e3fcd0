package source

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// serveSSH runs a minimal SSH Git server in process: it accepts only the
// authorized key, answers `git-upload-pack '<path>'` by running the real
// git upload-pack against the test's bare repository, and nothing else.
func (r *testRepo) serveSSH(t testing.TB, hostKey ssh.Signer, authorized ssh.PublicKey) string {
	t.Helper()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go r.handleSSH(c, cfg)
		}
	}()
	return fmt.Sprintf("ssh://git@%s/mesh.git", l.Addr())
}

func (r *testRepo) handleSSH(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go r.sshSession(ch, creqs)
	}
}

func (r *testRepo) sshSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(false, nil)
			continue
		}
		var p struct{ Command string }
		if ssh.Unmarshal(req.Payload, &p) != nil {
			req.Reply(false, nil)
			return
		}
		f := strings.Fields(p.Command)
		if len(f) != 2 || f[0] != "git-upload-pack" {
			req.Reply(false, nil)
			return
		}
		repo := filepath.Join(r.base, filepath.Clean("/"+strings.Trim(f[1], "'")))
		req.Reply(true, nil)
		cmd := exec.Command("git", "upload-pack", repo)
		cmd.Env = append(os.Environ(), "HOME="+r.home, "GIT_CONFIG_NOSYSTEM=1")
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		stdin, _ := cmd.StdinPipe()
		go func() { io.Copy(stdin, ch); stdin.Close() }()
		code := uint32(0)
		if cmd.Run() != nil {
			code = 1
		}
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ C uint32 }{code}))
		return
	}
}

func newKey(t testing.TB) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

// TestGitSourceSSH fetches over ssh:// with a key from a file and the host
// key pinned by known_hosts, and refuses a wrong host key or an
// unauthorized client key as permanent authentication failures.
func TestGitSourceSSH(t *testing.T) {
	r := newTestRepo(t, map[string]string{"a.cue": "a: 1\n"})
	host, _ := newKey(t)
	otherHost, _ := newKey(t)
	client, clientPEM := newKey(t)
	_, strangerPEM := newKey(t)
	url := r.serveSSH(t, host, client.PublicKey())
	hostport := strings.TrimSuffix(strings.TrimPrefix(url, "ssh://git@"), "/mesh.git")

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile := write("id", clientPEM)
	strangerFile := write("stranger", strangerPEM)
	known := write("known_hosts", []byte(knownhosts.Line([]string{knownhosts.Normalize(hostport)}, host.PublicKey())+"\n"))
	wrongKnown := write("wrong_known_hosts", []byte(knownhosts.Line([]string{knownhosts.Normalize(hostport)}, otherHost.PublicKey())+"\n"))

	src, err := NewGit(GitOptions{URL: url, Credentials: Credentials{SSHKeyFile: keyFile, KnownHostsFile: known}})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := src.Latest(testCtx(t))
	if err != nil {
		t.Fatalf("ssh fetch: %v", err)
	}
	if readString(t, rev.Files, "a.cue") != "a: 1\n" {
		t.Fatal("wrong content over ssh")
	}
	for name, creds := range map[string]Credentials{
		"wrong host key":   {SSHKeyFile: keyFile, KnownHostsFile: wrongKnown},
		"unauthorized key": {SSHKeyFile: strangerFile, KnownHostsFile: known},
	} {
		t.Run(name, func(t *testing.T) {
			src, err := NewGit(GitOptions{URL: url, Credentials: creds})
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Latest(testCtx(t))
			if !errors.Is(err, ErrAuth) || !Permanent(err) {
				t.Fatalf("error %v, want a permanent authentication failure", err)
			}
			t.Logf("%v", err)
		})
	}

	// The fetch bound holds over ssh too: the session is closed mid-pack.
	t.Run("fetch bound", func(t *testing.T) {
		r.commit(t, "big", map[string]string{"big.bin": randomString(t, 8<<20)})
		src, err := NewGit(GitOptions{URL: url, MaxFetchSize: 4 << 20, Credentials: Credentials{SSHKeyFile: keyFile, KnownHostsFile: known}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Latest(testCtx(t)); !errors.Is(err, ErrFetchTooLarge) || !Permanent(err) {
			t.Fatalf("error %v, want a permanent ErrFetchTooLarge", err)
		}
	})
}
