//go:build unix

package readmetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// command is one command of the README with the output shown under it.
type command struct {
	line int      // 1-based line in README.md
	text string   // the command, its trailing comment removed
	want []string // the output shown under it (console blocks only)
}

// trailingComment is a comment after a command: two or more spaces, then #.
var trailingComment = regexp.MustCompile(`\s{2,}#.*$`)

// parse extracts the commands of the ```sh and ```console blocks of src.
func parse(src string) []command {
	var cmds []command
	lang, in := "", false
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			if in {
				in = false
				continue
			}
			in, lang = true, strings.TrimSpace(strings.TrimPrefix(line, "```"))
			continue
		}
		if !in {
			continue
		}
		switch lang {
		case "sh", "shell", "bash":
			t := strings.TrimSpace(trailingComment.ReplaceAllString(line, ""))
			if t != "" && !strings.HasPrefix(t, "#") {
				cmds = append(cmds, command{line: n, text: t})
			}
		case "console":
			if strings.HasPrefix(line, "$ ") {
				t := strings.TrimSpace(trailingComment.ReplaceAllString(line[2:], ""))
				cmds = append(cmds, command{line: n, text: t})
				continue
			}
			if len(cmds) > 0 && cmds[len(cmds)-1].line < n {
				c := &cmds[len(cmds)-1]
				c.want = append(c.want, line)
			}
		}
	}
	for i := range cmds {
		w := cmds[i].want
		for len(w) > 0 && strings.TrimSpace(w[len(w)-1]) == "" {
			w = w[:len(w)-1]
		}
		cmds[i].want = w
	}
	return cmds
}

// action says what the test does with a README command.
type action int

const (
	run     action = iota // run it with sh -c in the work dir
	skip                  // cannot run in a test: reason says why
	serve                 // make run: start the Makefile's serve, keep it until the end
	httpGet               // curl -s URL: fetched with net/http (curl may be missing)
)

// rule covers the README commands matching re.
type rule struct {
	re     *regexp.Regexp
	act    action
	exit   int    // the exit status run expects
	reason string // for skip
}

func r(pattern string, act action, exit int, reason string) rule {
	return rule{re: regexp.MustCompile(pattern), act: act, exit: exit, reason: reason}
}

// rules covers every command of the README; a command no rule matches
// fails the test, so a new command is either run or excused here.
var rules = []rule{
	r(`^make run$`, serve, 0, ""),
	r(`^make test$`, skip, 0, "runs every test of the repository, this one included"),
	r(`^make demo$`, skip, 0, "runs until Ctrl-C and builds two more programs; TestDemoScript checks scripts/demo.sh parses and refuses taken ports"),
	r(`^make build && export PATH=`, skip, 0, "the test builds gitmesh once and puts it first on PATH the same way"),
	r(`^go install ./cmd/gitmesh$`, skip, 0, "installs the same build into GOPATH/bin, outside the test's sandbox"),
	r(`^bash internal/kubetest/build-kube-apiserver\.sh$`, skip, 0, "builds kube-apiserver for minutes; CI runs it in .ci/run"),
	r(`^sudo apt-get install etcd-server$`, skip, 0, "installs a system package; CI does it in .ci/run"),
	r(`^GITMESH_REQUIRE_KUBE=1 make test$`, skip, 0, "runs every test of the repository; CI runs it in .ci/run"),
	r(`^curl -s http://127\.0\.0\.1:15014/`, httpGet, 0, ""),
	r(`^gitmesh validate broken$`, run, 1, ""),
	r(`^gitmesh check examples/bookinfo --base HEAD$`, run, 1, ""),
	r(`^gitmesh (install|uninstall)( --image \S+)?$`, skip, 0, "needs a Kubernetes cluster; TestInstallKube (cmd/gitmesh) runs it against a real API server"),
	r(`^(kubectl|helm) `, skip, 0, "needs a Kubernetes cluster and the tool; internal/install's tests render and apply the same objects with kustomize's and Helm's Go libraries"),
	r(`^make image$`, skip, 0, "builds a linux binary for a minute; internal/ociimage's TestTarball checks the tarball, CI runs make image in .ci/run"),
	r(`^gitmesh `, run, 0, ""),
	r(`^(cp|sed|git checkout|rm) `, run, 0, ""),
}

func find(c command) (rule, bool) {
	for _, rl := range rules {
		if rl.re.MatchString(c.text) {
			return rl, true
		}
	}
	return rule{}, false
}

// normalizers make output that changes from run to run comparable.
var normalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`^gitmesh \S+ \([^)]*\)$`), "gitmesh VERSION (GO, OS/ARCH)"},
	{regexp.MustCompile(`\b[0-9a-f]{12,64}\b`), "HASH"},
	{regexp.MustCompile(`\d+(\.\d+)?(ms|s|m|h) ago`), "AGO"},
	{regexp.MustCompile(`valid until \S+`), "valid until TIME"},
}

func normalize(line string, dirs ...string) string {
	for _, d := range dirs {
		line = strings.ReplaceAll(line, d, "/path/to/gitmesh")
	}
	for _, n := range normalizers {
		line = n.re.ReplaceAllString(line, n.with)
	}
	return strings.TrimRight(line, " \t")
}

// match reports whether got fits want, where a want line "..." matches any
// number of lines.
func match(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if want[0] == "..." {
		for i := 0; i <= len(got); i++ {
			if match(want[1:], got[i:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && want[0] == got[0] && match(want[1:], got[1:])
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds gitmesh and runs the README's commands")
	}
	root := repoRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := parse(string(src))
	if len(cmds) < 10 {
		t.Fatalf("found %d commands in README.md; the parser or the README lost its examples", len(cmds))
	}
	// Every command is covered before anything runs.
	for _, c := range cmds {
		if _, ok := find(c); !ok {
			t.Errorf("README.md:%d: %q is neither run nor excused by readme_test.go: add a rule", c.line, c.text)
		}
	}
	if t.Failed() {
		return
	}

	binDir := t.TempDir()
	bin := filepath.Join(binDir, "gitmesh")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gitmesh")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	work := t.TempDir()
	copyTree(t, filepath.Join(root, "examples"), filepath.Join(work, "examples"))
	env := append(os.Environ(),
		"PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GIT_AUTHOR_NAME=readme", "GIT_AUTHOR_EMAIL=readme@gitmesh.invalid",
		"GIT_COMMITTER_NAME=readme", "GIT_COMMITTER_EMAIL=readme@gitmesh.invalid",
		"NO_COLOR=1",
	)
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-qm", "examples"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = work, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}

	// The README's ports are replaced by free ones, so the test never meets
	// a make run a developer left running.
	xdsPort, httpPort := freePort(t), freePort(t)
	ports := strings.NewReplacer("15010", xdsPort, "15014", httpPort)

	var srv *server
	for _, c := range cmds {
		rl, _ := find(c)
		text := ports.Replace(c.text)
		switch rl.act {
		case skip:
			t.Logf("README.md:%d: not run: %s: %s", c.line, c.text, rl.reason)
			continue
		case serve:
			srv = startServe(t, root, bin, work, env, ports)
			continue
		case httpGet:
			url := strings.TrimSpace(strings.TrimPrefix(text, "curl -s"))
			got := get(t, url)
			compare(t, c, got, work, root)
			continue
		}
		if strings.HasPrefix(c.text, "gitmesh status") {
			if srv == nil {
				t.Fatalf("README.md:%d: %q runs before make run started a server", c.line, c.text)
			}
			if !strings.Contains(text, "--server") { // the default is make run's 127.0.0.1:15014
				text += " --server 127.0.0.1:" + httpPort
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "sh", "-c", text)
		cmd.Dir, cmd.Env = work, env
		out, err := cmd.CombinedOutput()
		cancel()
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("README.md:%d: %s: %v", c.line, c.text, err)
			}
			code = ee.ExitCode()
		}
		if code != rl.exit {
			t.Errorf("README.md:%d: %s: exit %d, want %d\n%s", c.line, c.text, code, rl.exit, out)
		}
		compare(t, c, string(out), work, root)
	}
	if srv == nil {
		t.Fatal("README.md never says make run")
	}
	srv.interrupt(t)
	serveCtrlC(t, bin, work, env)
}

func compare(t *testing.T, c command, out string, dirs ...string) {
	t.Helper()
	if len(c.want) == 0 {
		return
	}
	var got []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		got = append(got, normalize(l, dirs...))
	}
	want := make([]string, len(c.want))
	for i, l := range c.want {
		want[i] = normalize(l, dirs...)
	}
	if !match(want, got) {
		t.Errorf("README.md:%d: %s: the README shows\n%s\nbut it prints (normalized)\n%s",
			c.line, c.text, strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// server is the serve make run starts.
type server struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

// startServe runs make run itself, in its own process group as a terminal
// would, with the binary, addresses and state dir moved into the test's
// sandbox, and waits until it serves. It also holds the Makefile to what
// the README promises: run builds bin/gitmesh first, then runs it.
func startServe(t *testing.T, root, bin, work string, env []string, ports *strings.Replacer) *server {
	t.Helper()
	recipe := makeRecipe(t, filepath.Join(root, "Makefile"), "run")
	buildAt, serveAt := -1, -1
	for i, l := range recipe {
		if strings.Contains(l, "$(GO) build") && strings.Contains(l, "-o $(BIN)") {
			buildAt = i
		}
		if strings.HasPrefix(l, "exec $(BIN) serve") && serveAt < 0 {
			serveAt = i
		}
	}
	if buildAt < 0 || serveAt < 0 || buildAt > serveAt {
		t.Fatalf("Makefile: run must build $(BIN) first, then exec $(BIN) serve (so Ctrl-C reaches gitmesh, not make); its recipe is\n%s", strings.Join(recipe, "\n"))
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed; the README starts with make run")
	}
	httpAddr := "127.0.0.1:" + ports.Replace("15014")
	out := &bytes.Buffer{}
	cmd := exec.Command("make", "--no-print-directory", "-C", root, "run",
		"BIN="+bin,
		"RUN_XDS_ADDR=127.0.0.1:"+ports.Replace("15010"),
		"RUN_HTTP_ADDR="+httpAddr,
		"RUN_STATE_DIR="+filepath.Join(work, ".gitmesh-state"))
	cmd.Env, cmd.Stdout, cmd.Stderr = env, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	url := "http://" + httpAddr + "/readyz"
	deadline := time.Now().Add(60 * time.Second) // make rebuilds (relinks) bin/gitmesh first
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			t.Fatalf("make run exited before it was ready: %v\n%s", err, out)
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("make run was not ready within 60s\n%s", out)
	return nil
}

// interrupt is Ctrl-C in make run's terminal: SIGINT to the whole process
// group. make and gitmesh must exit 0, quietly: no "make: *** … Error" or
// "Interrupt", no panic.
func (s *server) interrupt(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		// make itself may die of the SIGINT it got too (a shell shows
		// nothing for that, as for any Ctrl-C); what it must not do is
		// report gitmesh failing.
		if err != nil && !killedByInterrupt(err) {
			t.Errorf("Ctrl-C on make run: %v, want exit 0 or make ended by the interrupt\n%s", err, s.out)
		}
		for _, bad := range []string{"make: ***", "panic", "goroutine "} {
			if strings.Contains(s.out.String(), bad) {
				t.Errorf("Ctrl-C on make run printed %q\n%s", bad, s.out)
			}
		}
	case <-time.After(15 * time.Second):
		t.Errorf("Ctrl-C on make run: still running after 15s\n%s", s.out)
	}
}

// makeRecipe returns the recipe lines of target, continuation lines joined.
func killedByInterrupt(err error) bool {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGINT
}

// serveCtrlC: gitmesh serve itself exits 0, without a panic, on SIGINT.
// make run execs it, so this is its exit status under Ctrl-C.
func serveCtrlC(t *testing.T, bin, work string, env []string) {
	t.Helper()
	httpAddr := "127.0.0.1:" + freePort(t)
	out := &bytes.Buffer{}
	cmd := exec.Command(bin, "serve", "--dir", "examples/bookinfo", "--xds-insecure",
		"--xds-addr", "127.0.0.1:"+freePort(t), "--http-addr", httpAddr,
		"--state-dir", filepath.Join(work, ".gitmesh-state-ctrlc"))
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = work, env, out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 15s\n%s", out)
		}
		if resp, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil || strings.Contains(out.String(), "panic") {
			t.Errorf("gitmesh serve on Ctrl-C: %v, want exit 0 and no panic\n%s", err, out)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("gitmesh serve on Ctrl-C: still running after 10s\n%s", out)
	}
}

func makeRecipe(t *testing.T, makefile, target string) []string {
	t.Helper()
	b, err := os.ReadFile(makefile)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	in := false
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		if !in {
			in = strings.HasPrefix(l, target+":")
			continue
		}
		if !strings.HasPrefix(l, "\t") {
			break
		}
		l = strings.TrimSpace(strings.TrimPrefix(l, "@"))
		l = strings.TrimPrefix(strings.TrimSpace(l), "@")
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
	return lines
}

func get(t *testing.T, url string) string {
	t.Helper()
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(fmt.Errorf("copy %s: %w", from, err))
	}
}

// TestParse keeps the extraction honest on a small README.
func TestParse(t *testing.T) {
	src := "text\n```sh\nmake run    # comment\n# only a comment\n\n```\n```console\n$ gitmesh version\ngitmesh dev (go1, linux/amd64)\n\n$ gitmesh validate x   # note\nline\n\nmore\n\n```\n```cue\n$ not a command\n```\n"
	got := parse(src)
	want := []command{
		{line: 3, text: "make run"},
		{line: 8, text: "gitmesh version", want: []string{"gitmesh dev (go1, linux/amd64)"}},
		{line: 11, text: "gitmesh validate x", want: []string{"line", "", "more"}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parse:\n got %v\nwant %v", got, want)
	}
	if !match([]string{"a", "...", "d"}, []string{"a", "b", "c", "d"}) || match([]string{"a", "..."}, []string{"b"}) {
		t.Fatal("match: ... does not stand for any lines")
	}
}
