package main

import (
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/gitmesh/gitmesh/internal/check"
	"github.com/gitmesh/gitmesh/schema/model"
)

func newCheckCmd(_ *globalFlags) *cobra.Command {
	var (
		base, head, format, failOn string
		load                       loadFlags
	)
	cmd := &cobra.Command{
		Use:   "check [DIR] --base REV",
		Short: "Check a pull request: new findings and what every proxy will receive",
		Long: `check loads the mesh in DIR (default: the current directory) from the working
tree (or --head REV) and from --base REV read straight from the Git object
store, runs both through the pipeline validate runs (schema, policies, render;
no credentials dir or discovered endpoints: see gitmesh validate), and reports:

  - every finding, with findings already present at base marked pre-existing
    (matched on code, path and message, not lines) and suppressed ones with
    their reason (.gitmesh/suppressions.yaml in the mesh directory);
  - for every proxy class whose config changes, a semantic diff of its
    rendered Envoy resources (classes with identical changes are grouped);
  - the traffic tests (tests: in the mesh) whose outcome changes, with both
    outcomes; one that passed at base and fails at head is a new error.

Formats: text, json, markdown (a PR comment), sarif (code scanning),
github (workflow annotations, then text).

Exit status: 0 when no new finding reaches --fail-on, 1 when one does, 2 for
usage or internal errors. The same in every format.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sev, err := model.ParseSeverity(failOn)
			if err != nil || sev == model.SeverityInfo {
				return usageError("--fail-on: want error or warning, got %q", failOn)
			}
			if base == "" {
				return usageError("--base is required (the revision the change targets, like origin/main)")
			}
			dir, err := meshDir(args)
			if err != nil {
				return err
			}
			opts, err := load.options()
			if err != nil {
				return err
			}
			defer load.close()
			rep, err := check.Run(cmd.Context(), check.Options{
				Dir: dir, Base: base, Head: head, Load: opts, FailOn: sev,
			})
			var ue *check.UsageError
			if errors.As(err, &ue) {
				return usageError("%v", ue.Err)
			}
			if err != nil {
				return internalError(err)
			}
			out := cmd.OutOrStdout()
			if err := check.Write(out, rep, format, check.WriteOptions{Color: isTerminal(out)}); err != nil {
				return internalError(err)
			}
			if rep.Failed {
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&base, "base", "", "base revision: branch, tag, SHA, origin/main, HEAD~1 (required)")
	cmd.Flags().StringVar(&head, "head", "", "head revision (default: the working tree of DIR)")
	outputFlag(cmd, &format, check.Formats...)
	deprecatedAlias(cmd, "format", "output")
	cmd.Flags().StringVar(&failOn, "fail-on", "error", "lowest severity of a new finding that fails the check: error or warning")
	load.register(cmd)
	return cmd
}

// isTerminal reports whether w is a character device (a terminal) and
// colour is not switched off with NO_COLOR, so CI logs and files get plain
// text.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
