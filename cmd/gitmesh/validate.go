package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// loadFlags bound the loading of an untrusted repository; validate, render
// and check share them.
type loadFlags struct {
	maxFileSize   int64
	maxRepoSize   int64
	timeout       time.Duration
	maxEvalMemory int64
	// sandbox is the command's evaluation worker, made by the first
	// options call and stopped by close.
	sandbox *schema.Sandbox
}

// minEvalMemory is the smallest --max-eval-memory: below it the schema
// alone does not compile in the worker.
const minEvalMemory = 64 << 20

func (f *loadFlags) register(cmd *cobra.Command) {
	cmd.Flags().Int64Var(&f.maxFileSize, "max-file-size", 1<<20, "refuse files larger than this many bytes")
	cmd.Flags().Int64Var(&f.maxRepoSize, "max-repo-size", 64<<20, "refuse repositories larger than this many bytes in total (mesh files; for a Git source also the whole fetch)")
	cmd.Flags().DurationVar(&f.timeout, "eval-timeout", 30*time.Second, "cancel CUE evaluation after this long")
	cmd.Flags().Int64Var(&f.maxEvalMemory, "max-eval-memory", schema.DefaultMaxEvalMemory,
		"refuse a repository whose CUE evaluation needs more than this many bytes of memory (evaluation runs in a capped worker process)")
	flagMin(cmd, "max-eval-memory", strconv.Itoa(minEvalMemory), "the evaluator itself needs that much")
}

// options are the load options of the command's flags. Every command
// evaluates in a sandbox: a repository is untrusted input.
func (f *loadFlags) options() (schema.Options, error) {
	if f.sandbox == nil {
		sb, err := schema.NewSandbox(schema.SandboxOptions{MaxMemory: f.maxEvalMemory})
		if err != nil {
			return schema.Options{}, internalError(err)
		}
		f.sandbox = sb
	}
	return schema.Options{MaxFileSize: f.maxFileSize, MaxTotalSize: f.maxRepoSize, Timeout: f.timeout, Sandbox: f.sandbox}, nil
}

// close stops the evaluation worker, if one was started.
func (f *loadFlags) close() {
	if f.sandbox != nil {
		_ = f.sandbox.Close()
		f.sandbox = nil
	}
}

// meshDir checks that DIR is a directory, so a typo is a usage error (exit
// 2) and not a finding about the mesh.
func meshDir(args []string) (string, error) {
	dir := dirArg(args)
	st, err := os.Stat(dir)
	if err != nil {
		return "", usageError("%s: no such directory", dir)
	}
	if !st.IsDir() {
		return "", usageError("%s: not a directory", dir)
	}
	return dir, nil
}

// runArg runs the pipeline over the mesh repository named by the optional
// DIR argument, the way validate and render both start: without a
// credentials source or discovered endpoints, which only serve has (see
// internal/pipeline).
func (f *loadFlags) runArg(cmd *cobra.Command, args []string) (string, *pipeline.Result, error) {
	dir, err := meshDir(args)
	if err != nil {
		return "", nil, err
	}
	opts, err := f.options()
	if err != nil {
		return "", nil, err
	}
	defer f.close()
	res := pipeline.Run(cmd.Context(), pipeline.Input{Dir: dir, Load: opts})
	if res.Err != nil {
		return "", nil, internalError(res.Err)
	}
	return dir, res, nil
}

func newValidateCmd(g *globalFlags) *cobra.Command {
	var (
		output string
		load   loadFlags
	)
	cmd := &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Validate a mesh repository: schema, policies and render, as serve runs them",
		Long: `validate runs the mesh repository in DIR (default: the current directory)
through everything serve runs before it serves a revision — the CUE schema,
gitmesh's policies and guardrails, render with its check of every Envoy
resource, and the repository's traffic tests on the rendered config — and
prints every finding with its file:line:col.

What needs the cluster is not available here: gateway credentials are
reported as warnings (GM0601) naming the files serve will need, and
endpoints discovered from Kubernetes are not rendered.

Exit status: 0 when there is no error, 1 when there are errors, 2 for usage
or internal errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, res, err := load.runArg(cmd, args)
			if err != nil {
				return err
			}
			rep := newValidateReport(dir, res.Mesh, res.Diagnostics)
			if err := rep.write(cmd.OutOrStdout(), output); err != nil {
				return internalError(err)
			}
			if !res.OK() {
				return errFindings
			}
			return nil
		},
	}
	outputFlag(cmd, &output, "text", "json", "yaml")
	load.register(cmd)
	return cmd
}

// validateReport is the machine-readable result of validate; its JSON form is
// documented in the README and kept stable.
type validateReport struct {
	Dir         string            `json:"dir"`
	Valid       bool              `json:"valid"`
	Errors      int               `json:"errors"`
	Warnings    int               `json:"warnings"`
	Infos       int               `json:"infos"`
	Counts      map[string]int    `json:"counts,omitempty"`
	Diagnostics model.Diagnostics `json:"diagnostics"`
}

func newValidateReport(dir string, m *model.Mesh, diags model.Diagnostics) *validateReport {
	r := &validateReport{
		Dir:         dir,
		Valid:       !diags.HasErrors(),
		Errors:      diags.Count(model.SeverityError),
		Warnings:    diags.Count(model.SeverityWarning),
		Infos:       diags.Count(model.SeverityInfo),
		Diagnostics: diags,
	}
	if r.Diagnostics == nil {
		r.Diagnostics = model.Diagnostics{}
	}
	if m != nil {
		r.Counts = map[string]int{
			"services":   len(m.Services),
			"gateways":   len(m.Gateways),
			"external":   len(m.External),
			"extensions": len(m.Extensions),
		}
		if len(m.Tests) > 0 {
			r.Counts["tests"] = len(m.Tests)
		}
	}
	return r
}

func (r *validateReport) write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "yaml":
		b, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	for _, d := range r.Diagnostics {
		fmt.Fprintln(w, formatDiagnostic(r.Dir, d))
	}
	verdict := "valid"
	if !r.Valid {
		verdict = "invalid"
	}
	summary := fmt.Sprintf("%s: %s: %s, %s, %s", r.Dir, verdict,
		plural(r.Errors, "error"), plural(r.Warnings, "warning"), plural(r.Infos, "info"))
	if r.Counts != nil {
		counts := []string{plural(r.Counts["services"], "service"), plural(r.Counts["gateways"], "gateway"),
			plural(r.Counts["external"], "external service"), plural(r.Counts["extensions"], "extension")}
		if n := r.Counts["tests"]; n > 0 {
			counts = append(counts, plural(n, "traffic test"))
		}
		summary += " (" + strings.Join(counts, ", ") + ")"
	}
	_, err := fmt.Fprintln(w, summary)
	return err
}

// formatDiagnostic prints a finding the way compilers do, so editors and
// terminals can jump to it: the repository-relative file is joined to the
// directory the user named.
func formatDiagnostic(dir string, d model.Diagnostic) string {
	s := dirPos(dir, d.Pos).String() + ": " + d.Severity.String() + " " + d.Code + ": "
	if d.Path != "" {
		s += d.Path + ": "
	}
	return s + d.Message
}

// dirPos joins a repository-relative position to the directory the user
// named.
func dirPos(dir string, pos model.Pos) model.Pos {
	if pos.File != "" && dir != "" && dir != "." {
		pos.File = filepath.ToSlash(filepath.Join(dir, pos.File))
	}
	return pos
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	if word == "info" {
		return fmt.Sprintf("%d infos", n)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
