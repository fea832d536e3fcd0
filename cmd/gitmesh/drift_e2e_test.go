package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/internal/kubetest"
	"github.com/gitmesh/gitmesh/reconciler/api"
	"github.com/gitmesh/gitmesh/reconciler/drift"
)

// driftMesh: greeter with two static versions, and ratings whose only
// version has no endpoints (a GM2005 finding from the start).
const driftMesh = `package mesh

mesh: {name: "drift-e2e", mtls: "DISABLE"}

services: greeter: {
	proxy: "proxyless"
	ports: [{name: "grpc", number: 50051, protocol: "grpc"}]
	versions: {
		v1: endpoints: [{address: "127.0.0.1", ports: grpc: 17001}]
		v2: endpoints: [{address: "127.0.0.1", ports: grpc: 17002}]
	}
}

services: ratings: {
	proxy: "proxyless"
	ports: [{name: "grpc", number: 50053, protocol: "grpc"}]
	versions: v1: {}
}
`

// silentClient takes its listeners and never ACKs them: a proxy stuck on
// its old config.
func silentClient(t *testing.T, addr, node string) {
	t.Helper()
	if _, _, err := listenerStream(t, addr, node); err != nil {
		t.Fatalf("%s: %v", node, err)
	}
}

// statusBranch reads the status branch of the bare repository.
type statusBranch struct {
	t    *testing.T
	bare string
}

// commits lists the branch's commit subjects, newest first; nil when the
// branch does not exist yet.
func (s statusBranch) commits() []string {
	out, err := gitOut(s.bare, "log", "--format=%an: %s", "gitmesh-status")
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}

// report reads the committed report.
func (s statusBranch) report() *drift.Report {
	out, err := gitOut(s.bare, "show", "gitmesh-status:status/e2e.yaml")
	if err != nil {
		return nil
	}
	r, err := drift.Parse([]byte(out))
	if err != nil {
		s.t.Fatalf("committed report does not parse: %v\n%s", err, out)
	}
	return r
}

// waitCommit waits until the branch has want commits whose report holds
// a finding with code, and checks no further commit follows at once.
func (s statusBranch) waitCommit(want int, code string) *drift.Report {
	s.t.Helper()
	var rep *drift.Report
	waitFor(s.t, 10*time.Second, fmt.Sprintf("commit %d with %s", want, code), func() bool {
		rep = s.report()
		return len(s.commits()) >= want && rep != nil && hasCode(rep, code)
	})
	if got := s.commits(); len(got) != want {
		s.t.Fatalf("status branch has %d commits, want %d:\n%s", len(got), want, strings.Join(got, "\n"))
	}
	return rep
}

// gitOut runs git in dir and returns its trimmed output.
func gitOut(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func hasCode(r *drift.Report, code string) bool {
	for _, f := range r.Findings {
		if f.Code == code {
			return true
		}
	}
	return false
}

// TestDriftCommits is issue 6's Git acceptance test, all real: git daemon,
// the real serve wiring committing to the status branch, raw ADS streams
// that NACK, never ACK, or claim an undeclared class, and a human pushing
// to the status branch in between.
func TestDriftCommits(t *testing.T) {
	repo := newGitServer(t)
	served := repo.commit("mesh: greeter and ratings", map[string]string{"mesh/mesh.cue": driftMesh})

	cfg := serveConfig{
		repo: repo.url(), branch: "main", path: "mesh",
		xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour,
	}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 64<<20, 30*time.Second
	cfg.drift = driftFlags{
		cluster: "e2e", kubernetes: "off", interval: 100 * time.Millisecond, staleAfter: time.Second,
		expiryWarning: drift.DefaultExpiryWarning, commit: true, branch: "gitmesh-status", leaderElect: "off",
		authorName: "gitmesh-bot", authorEmail: "bot@gitmesh.test",
	}
	logs := &syncLog{}
	m, _ := startServe(t, cfg, logs)
	st := statusBranch{t: t, bare: repo.bare}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gitmesh logs:\n%s", logs.String())
		}
		out, _ := gitOut(repo.bare, "log", "-p", "--format=commit %h%nAuthor: %an <%ae>%n%n    %s%n%n%b", "gitmesh-status")
		t.Logf("git log -p gitmesh-status:\n%s", out)
	})

	// 1. The first report: ratings has no endpoints.
	rep := st.waitCommit(1, drift.CodeNoEndpoints)
	if rep.Revision.Served != served || rep.Cluster != "e2e" || rep.Mesh != "drift-e2e" {
		t.Errorf("report header = %+v / %s / %s", rep.Revision, rep.Cluster, rep.Mesh)
	}
	// Reports keep being built every 100ms; none of them means anything new.
	time.Sleep(time.Second)
	if got := st.commits(); len(got) != 1 {
		t.Fatalf("an unchanged situation made commits:\n%s", strings.Join(got, "\n"))
	}

	// 2. A human adds a note to the status branch.
	human := filepath.Join(t.TempDir(), "human")
	git(t, filepath.Dir(human), "clone", "-q", "-b", "gitmesh-status", repo.bare, human)
	os.WriteFile(filepath.Join(human, "NOTES.md"), []byte("ratings is being migrated; ignore GM2005 until Monday\n"), 0o644)
	git(t, human, "add", "NOTES.md")
	git(t, human, "-c", "user.name=Alice", "-c", "user.email=alice@example.com", "commit", "-q", "-m", "notes: ratings migration")
	git(t, human, "push", "-q", "origin", "gitmesh-status")
	humanSHA := git(t, human, "rev-parse", "HEAD")

	// 3. A proxy NACKs: one commit, on top of the human's.
	nackWithText(t, m.XDSAddr(), "proxyless/default/greeter/v1/pod-1", "listener: unsupported filter envoy.bad")
	rep = st.waitCommit(3, drift.CodeNacked)
	if subj := st.commits()[0]; !strings.Contains(subj, "gitmesh-bot: drift: proxyless/default/greeter/v1/pod-1 NACKed listeners of revision "+served[:12]) {
		t.Errorf("NACK commit subject = %q", subj)
	}
	if _, err := gitOut(repo.bare, "merge-base", "--is-ancestor", humanSHA, "gitmesh-status"); err != nil {
		t.Errorf("the human's commit is not in the branch any more: %v", err)
	}
	if out, err := gitOut(repo.bare, "show", "gitmesh-status:NOTES.md"); err != nil || !strings.Contains(out, "ratings is being migrated") {
		t.Errorf("the human's NOTES.md was lost: %q %v", out, err)
	}

	// 4. A proxy of a class the mesh does not declare keeps connecting.
	undeclared(t, m.XDSAddr(), "proxyless/default/ghost/v1/pod-9")
	rep = st.waitCommit(4, drift.CodeUndeclaredProxy)

	// 5. A proxy takes its config and never ACKs: stale after the 1s grace.
	silentClient(t, m.XDSAddr(), "proxyless/default/greeter/v2/pod-2")
	rep = st.waitCommit(5, drift.CodeStale)
	for _, want := range []string{
		"GM2001 proxy/proxyless/default/greeter/v1/pod-1",
		"GM2002 proxy/proxyless/default/greeter/v2/pod-2",
		"GM2003 proxy/proxyless/default/ghost/v1/pod-9",
		"GM2005 service/default/ratings",
	} {
		found := false
		for _, f := range rep.Findings {
			found = found || f.Code+" "+f.Objects[0] == want
		}
		if !found {
			t.Errorf("committed report lacks %q", want)
		}
	}

	// The API serves the same report (its generatedAt is newer).
	var resp api.DriftResponse
	getJSONT(t, "http://"+m.HTTPAddr()+"/api/v1/drift", &resp)
	if resp.Report == nil || !drift.Same(resp.Report, rep) || resp.Publish.LastCommit == "" || !resp.Publish.Leader {
		t.Errorf("GET /api/v1/drift = %+v, publish %+v; want the committed report", resp.Report, resp.Publish)
	}
	code, body := httpGet(t, "http://"+m.HTTPAddr()+"/api/v1/drift?format=yaml")
	if code != http.StatusOK || !strings.HasPrefix(body, "apiVersion: gitmesh.dev/v1\nkind: DriftReport\n") {
		t.Errorf("?format=yaml: %d %.200s", code, body)
	}
	var status map[string]json.RawMessage
	getJSONT(t, "http://"+m.HTTPAddr()+"/api/v1/status", &status)
	if !strings.Contains(string(status["drift"]), `"lastCommit"`) {
		t.Errorf("status lacks the drift publish state: %s", status["drift"])
	}
	_, out, _ := runCLI(t, "status", "--server", "http://"+m.HTTPAddr())
	if !strings.Contains(out, "drift:     2 errors, 2 warnings, 0 info (committed ") ||
		!strings.Contains(out, "GM2001 error   proxyless/default/greeter/v1/pod-1 NACKed listeners") {
		t.Errorf("gitmesh status lacks the drift report:\n%s", out)
	}
	if got := st.commits(); len(got) != 5 {
		t.Errorf("%d commits, want 5 (4 reports + 1 human)", len(got))
	}
	if n := metric(t, "http://"+m.HTTPAddr(), `gitmesh_drift_commits_total{result="committed"}`); n != 4 {
		t.Errorf("gitmesh_drift_commits_total = %v, want 4", n)
	}

	// 6. A broken commit lands in Git: the newest revision is not served,
	// and the report says why, with the finding's position.
	bad := repo.commit("ratings: typo", map[string]string{"mesh/mesh.cue": strings.Replace(driftMesh, `number: 50053`, `number: 70000`, 1)})
	m.rec.Trigger()
	rep = st.waitCommit(6, drift.CodeRevisionNotServed)
	if rep.Revision.Served != served || rep.Revision.Newest != bad || !strings.Contains(rep.Revision.NewestStatus, "failed at load: ") ||
		!strings.Contains(rep.Revision.NewestStatus, "mesh.cue:") {
		t.Errorf("revision = %+v, want newest %s failed at load with a position", rep.Revision, bad)
	}
}

// undeclared opens an ADS stream for a node id whose class is not served
// and waits for the refusal.
func undeclared(t *testing.T, addr, node string) {
	t.Helper()
	if _, _, err := listenerStream(t, addr, node); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("undeclared node %s: got %v, want NotFound", node, err)
	}
}

// TestDriftSingleWriter runs two replicas against one repository and a
// real kube-apiserver (internal/kubetest): the Lease makes one of them the
// writer, so they never fight over the status branch even though their
// views differ; when the writer stops, the other takes over.
func TestDriftSingleWriter(t *testing.T) {
	cluster := kubetest.Shared(t)
	ns := cluster.Namespace(t)
	repo := newGitServer(t)
	repo.commit("mesh: greeter and ratings", map[string]string{"mesh/mesh.cue": driftMesh})

	replica := func(name string) (*serveMain, func()) {
		cfg := serveConfig{
			repo: repo.url(), branch: "main", path: "mesh",
			xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
			stateDir: t.TempDir(), interval: time.Hour,
		}
		cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 64<<20, 30*time.Second
		cfg.drift = driftFlags{
			cluster: "e2e", kubernetes: "on", kubeconfig: cluster.Kubeconfig, kubeNamespaces: []string{ns},
			interval: 100 * time.Millisecond, staleAfter: time.Second, expiryWarning: drift.DefaultExpiryWarning,
			commit: true, branch: "gitmesh-status", leaderElect: "auto", leaseNamespace: ns, leaseName: "gitmesh-drift-writer",
			authorName: name, authorEmail: name + "@gitmesh.test",
		}
		logs := &syncLog{}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s logs:\n%s", name, logs.String())
			}
		})
		return startServe(t, cfg, logs)
	}
	a, stopA := replica("replica-a")
	b, stopB := replica("replica-b")
	stops := map[*serveMain]func(){a: stopA, b: stopB}
	names := map[*serveMain]string{a: "replica-a", b: "replica-b"}
	st := statusBranch{t: t, bare: repo.bare}
	waitFor(t, 20*time.Second, "a first drift commit", func() bool { return len(st.commits()) >= 1 })

	leaders := func() (n int, leader, other *serveMain) {
		for _, m := range []*serveMain{a, b} {
			if m.drift.runner.Publish().Leader {
				n, leader = n+1, m
			} else {
				other = m
			}
		}
		return n, leader, other
	}
	n, leader, other := leaders()
	if n != 1 {
		t.Fatalf("%d replicas think they write, want exactly 1", n)
	}
	// Each replica sees its own proxies: a NACK on the follower is not the
	// leader's to commit, and the follower must not commit it either.
	nackWithText(t, other.XDSAddr(), "proxyless/default/greeter/v1/pod-1", "follower-only NACK")
	nackWithText(t, leader.XDSAddr(), "proxyless/default/greeter/v2/pod-2", "leader NACK")
	rep := st.waitCommit(2, drift.CodeNacked)
	time.Sleep(time.Second)
	if got := st.commits(); len(got) != 2 {
		t.Fatalf("replicas fought over the branch:\n%s", strings.Join(got, "\n"))
	}
	for _, f := range rep.Findings {
		if strings.Contains(f.Message, "follower-only") {
			t.Errorf("the follower's view was committed: %s", f.Message)
		}
	}

	// The writer goes away: the other one takes the Lease and writes.
	stops[leader]()
	waitFor(t, 20*time.Second, names[other]+" to take over", func() bool { return other.drift.runner.Publish().Leader })
	st.waitCommit(3, drift.CodeNacked)
	if subj := st.commits()[0]; !strings.HasPrefix(subj, names[other]+": ") {
		t.Errorf("after take-over the newest commit is %q, want %s's", subj, names[other])
	}
}
