package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, the same for every command: 0 fine, 1 the input has errors
// (or findings the user asked to fail on), 2 usage or internal errors.
const (
	exitOK       = 0
	exitFindings = 1
	exitUsage    = 2
)

// exitError carries an exit code up through cobra without printing twice.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// errFindings makes a command exit 1 with nothing more to print: the findings
// were already written in the format the user asked for.
var errFindings = &exitError{code: exitFindings}

// globalFlags are shared by every command.
type globalFlags struct {
	logLevel  string
	logFormat string
}

// run executes the CLI with args and returns the process exit code. Tests
// call it in-process with their own writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var g globalFlags
	root := newRootCmd(&g)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "gitmesh:", ee.err)
		}
		return ee.code
	}
	// Anything cobra returns itself (unknown flag, wrong argument count) is
	// a usage error.
	fmt.Fprintln(stderr, "gitmesh:", err)
	return exitUsage
}

// newRootCmd builds the command tree.
func newRootCmd(g *globalFlags) *cobra.Command {
	root := &cobra.Command{
		Use:   "gitmesh",
		Short: "A GitOps control plane for Envoy service meshes",
		Long: `gitmesh loads a service mesh described in CUE from a Git repository,
validates it, renders it into Envoy configuration and serves it over xDS.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every command's flags (and GITMESH_* variables) are checked here,
		// once, before it runs: see flagcheck.go. No subcommand sets its own
		// PersistentPreRunE, which would replace this one.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return prepareFlags(cmd, nil)
		},
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().SetAnnotation("log-format", annoOneOf, []string{"text", "json"})

	root.AddCommand(
		newValidateCmd(g),
		newCheckCmd(g),
		newExplainCmd(g),
		newRenderCmd(g),
		newServeCmd(g),
		newStatusCmd(),
		newBootstrapCmd(),
		newVersionCmd(),
		newCertsCmd(g),
		newAgentCmd(g),
		newCaptureCmd(),
		newInstallCmd(),
		newUninstallCmd(),
		newImportCmd(),
	)
	return root
}

// usageError wraps a message as a usage error (exit 2).
func usageError(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// internalError wraps err as an internal error (exit 2).
func internalError(err error) error {
	return &exitError{code: exitUsage, err: err}
}

// newLogger builds the slog logger the flags ask for.
func (g *globalFlags) newLogger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, usageError("--log-level: unknown level %q", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError("--log-format: unknown format %q (want text or json)", g.logFormat)
}

// dirArg returns the optional DIR argument, "." when absent.
func dirArg(args []string) string {
	if len(args) == 0 {
		return "."
	}
	return args[0]
}
