// Package kubetest runs a real etcd and kube-apiserver on loopback for
// gitmesh's Kubernetes tests: discovery and leader election are tested
// against the API server's real list/watch, Lease and validation behaviour
// rather than client-go's fake clientset, which has none of them.
//
// Only the API server runs: no scheduler, no controllers. Nothing creates
// EndpointSlices, so tests create them; Pods stay Pending; a deleted
// namespace stays Terminating for ever, so every test takes a fresh one from
// Cluster.Namespace.
//
// Startup takes 3–5 s, so a test binary shares one server: call Shared from
// tests and Main from TestMain. Start gives a private one.
package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/internal/skiplog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is one running etcd + kube-apiserver pair.
type Cluster struct {
	// Config reaches the API server as a system:masters user.
	Config *rest.Config
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// Kubeconfig is the path of a kubeconfig file for Config, for tests
	// that go through --kubeconfig like a user would.
	Kubeconfig string
	// Dir holds the PKI, the etcd data and both processes' logs.
	Dir string

	apiserverBin string
	apiPort      int
	etcdURL      string
	pki          *pki

	mu        sync.Mutex
	etcd      *process
	apiserver *process
}

// startTimeout bounds one API server start; the machine is shared with
// other builds, so it is far above the 3–5 s a start takes.
const startTimeout = 90 * time.Second

// Start starts a private cluster for t and stops it when t ends. It skips t
// when a binary is missing, unless GITMESH_REQUIRE_KUBE=1.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := start()
	if err != nil {
		fail(t, err)
	}
	t.Cleanup(c.Stop)
	return c
}

var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the cluster shared by every test of this test binary,
// starting it on first use. TestMain must call Main so it is stopped.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.once.Do(func() { shared.c, shared.err = start() })
	if shared.err != nil {
		fail(t, shared.err)
	}
	return shared.c
}

// Main runs the tests and then stops the shared cluster, if one was
// started. Use it as the whole body of TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if shared.c != nil {
		shared.c.Stop()
	}
	os.Exit(code)
}

// fail skips or fails t for err, depending on EnvRequire. A skip says so
// loudly, names how to run the test, and is appended to EnvSkipLog (when
// set) so make test can print one summary line: go test shows nothing of
// a passing package's skips without -v.
func fail(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, errMissing) && os.Getenv(EnvRequire) != "1" {
		skiplog.Record(EnvSkipLog, t.Name())
		t.Skipf("SKIPPED Kubernetes test: %v; to run it, build kube-apiserver with "+
			"bash internal/kubetest/build-kube-apiserver.sh, install etcd (apt-get install etcd-server), "+
			"and set %s=1 so a missing binary fails instead of skipping", err, EnvRequire)
	}
	t.Fatalf("kubetest: %v", err)
}

// start brings up etcd and kube-apiserver in a fresh directory.
func start() (*Cluster, error) {
	apiserverBin, etcdBin, err := binaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gitmesh-kubetest-")
	if err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	c := &Cluster{Dir: dir, apiserverBin: apiserverBin}
	if c.pki, err = newPKI(filepath.Join(dir, "pki")); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.startEtcd(etcdBin); err != nil {
		c.Stop()
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		c.Stop()
		return nil, err
	}
	c.apiPort = ports[0]
	if err := c.startAPIServer(); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.writeKubeconfig(); err != nil {
		c.Stop()
		return nil, err
	}
	c.Config = &rest.Config{
		Host:            "https://127.0.0.1:" + strconv.Itoa(c.apiPort),
		BearerToken:     c.pki.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.caPEM},
		// Tests create objects in bursts; the default 5 QPS would make
		// them wait on the client, not on the server.
		QPS: 200, Burst: 400,
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		c.Stop()
		return nil, fmt.Errorf("build client: %w", err)
	}
	return c, nil
}

// startEtcd starts etcd on two free loopback ports and waits for /health.
func (c *Cluster) startEtcd(bin string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	p, err := startProcess(c.Dir, "etcd", bin,
		"--name", "kubetest", "--data-dir", filepath.Join(c.Dir, "etcd-data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "kubetest="+peer,
		"--log-level", "warn")
	if err != nil {
		return err
	}
	c.etcd, c.etcdURL = p, client
	return waitReady(p, startTimeout, func() error {
		return get(http.DefaultClient, client+"/health", "")
	})
}

// startAPIServer starts kube-apiserver on c.apiPort (flags as in the
// project's start-kube.sh) and waits until /readyz answers.
func (c *Cluster) startAPIServer() error {
	p, err := startProcess(c.Dir, "kube-apiserver", c.apiserverBin,
		"--etcd-servers="+c.etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(c.apiPort),
		"--tls-cert-file="+c.pki.path(serverCertFile), "--tls-private-key-file="+c.pki.path(serverKeyFile),
		"--client-ca-file="+c.pki.path(caCertFile),
		"--token-auth-file="+c.pki.path(tokensFile),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki.path(saPubFile),
		"--service-account-signing-key-file="+c.pki.path(saKeyFile),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		// Nothing runs the endpoints controller; without this the server
		// would keep rewriting the "kubernetes" Service's endpoints.
		"--endpoint-reconciler-type=none",
		"--v=1")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.apiserver = p
	c.mu.Unlock()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caPEM)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://127.0.0.1:" + strconv.Itoa(c.apiPort) + "/readyz"
	return waitReady(p, startTimeout, func() error { return get(hc, url, c.pki.token) })
}

// StopAPIServer kills kube-apiserver (etcd keeps running), so a test can
// see how its code behaves when Kubernetes is unreachable. Tests that call
// it must not run in parallel with others on a shared cluster.
func (c *Cluster) StopAPIServer() {
	c.mu.Lock()
	p := c.apiserver
	c.apiserver = nil
	c.mu.Unlock()
	p.stop()
}

// RestartAPIServer starts kube-apiserver again on the same port against
// the same etcd, so clients reconnect to the same URL and find their data.
func (c *Cluster) RestartAPIServer() error {
	c.StopAPIServer()
	return c.startAPIServer()
}

// Stop kills both processes and removes the state directory.
func (c *Cluster) Stop() {
	c.StopAPIServer()
	c.mu.Lock()
	e := c.etcd
	c.etcd = nil
	c.mu.Unlock()
	e.stopGracefully(5 * time.Second)
	if c.Dir != "" {
		_ = os.RemoveAll(c.Dir)
	}
}

// Namespace creates a fresh namespace for t. Deleted namespaces never go
// away here (no namespace controller), so tests must not reuse names.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create namespace: %v", err)
	}
	return ns.Name
}

// writeKubeconfig writes Dir/kubeconfig for the admin token.
func (c *Cluster) writeKubeconfig() error {
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: kubetest
  context: {cluster: kubetest, user: admin}
current-context: kubetest
`, c.apiPort, c.pki.caFile, c.pki.token)
	if err := os.WriteFile(c.Kubeconfig, []byte(kc), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// waitReady polls check every 100 ms until it succeeds, the process exits
// or timeout passes; failures carry the tail of the process's log.
func waitReady(p *process, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if last = check(); last == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before it was ready; log:\n%s", p.name, p.err, p.tail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %v; log:\n%s", p.name, timeout, last, p.tail(30))
}

// get succeeds when url answers 200.
func get(hc *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
