package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/reconciler"
	"github.com/gitmesh/gitmesh/reconciler/api"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/source"
)

func newStatusCmd() *cobra.Command {
	var (
		server  string
		output  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a running gitmesh serves and which proxies are in sync",
		Long: `status reads a running gitmesh's read-only status API and prints the live
revision, the last attempt and every connected proxy's sync state per
resource type, like istioctl proxy-status (SYNCED, STALE, NOT SENT, NACKED).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			base, err := serverURL(server)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var st apiv1.Status
			var px apiv1.Proxies
			if err := getJSON(ctx, base+"/api/v1/status", &st); err != nil {
				return internalError(err)
			}
			if err := getJSON(ctx, base+"/api/v1/proxies", &px); err != nil {
				return internalError(err)
			}
			// Drift is optional: a report may not exist yet.
			var dr api.DriftResponse
			if err := getJSON(ctx, base+"/api/v1/drift", &dr); err != nil {
				dr.Report = nil
			}
			w := cmd.OutOrStdout()
			if output != "text" {
				out := statusOutput{Status: st, Proxies: px}
				if dr.Report != nil {
					out.Drift = &dr
				}
				if output == "yaml" {
					b, err := yaml.Marshal(out)
					if err != nil {
						return internalError(err)
					}
					_, err = w.Write(b)
					return err
				}
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			printStatus(w, st, px, time.Now())
			printDrift(w, dr)
			if !st.Ready {
				return errFindings
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "http://127.0.0.1:15014", "gitmesh status API: a base URL, or host:port for http://host:port")
	outputFlag(cmd, &output, "text", "json", "yaml")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

// serverURL turns --server into the API's base URL: a URL is used as it
// is (http or https), and host:port, the form --http-addr takes, means
// http://host:port.
func serverURL(server string) (string, error) {
	s := strings.TrimRight(strings.TrimSpace(server), "/")
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return "", usageError("--server: want host:port or an http(s) URL (got %q)", server)
	}
	if u.Port() == "" && !strings.Contains(server, "://") {
		return "", usageError("--server: want host:port or an http(s) URL (got %q): no port", server)
	}
	if u.Hostname() == "" {
		// ":15014", as --http-addr is written: this machine.
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
		s = strings.TrimRight(u.String(), "/")
	}
	return s, nil
}

// statusOutput is `gitmesh status -o json`: the three API documents as
// served, decoded into the API's own types so that no field is dropped.
type statusOutput struct {
	Status  apiv1.Status       `json:"status"`
	Proxies apiv1.Proxies      `json:"proxies"`
	Drift   *api.DriftResponse `json:"drift"`
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("status API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

func printStatus(w io.Writer, st apiv1.Status, px apiv1.Proxies, now time.Time) {
	fmt.Fprintf(w, "source:    %s\n", st.Source)
	if st.Live != nil {
		how := "applied " + ago(now, st.Live.AppliedAt)
		if st.Live.Restored {
			how += ", restored from the state dir"
		}
		fmt.Fprintf(w, "live:      %s %q (%s)\n", st.Live.Short, st.Live.Message, how)
	} else {
		fmt.Fprintf(w, "live:      none\n")
	}
	for _, c := range st.Conditions {
		if c.Type == reconciler.ConditionReady {
			fmt.Fprintf(w, "ready:     %s (%s) %s\n", c.Status, c.Reason, c.Message)
		}
	}
	if a := st.LastAttempt; a != nil && a.Result == apiv1.AttemptFailed {
		fmt.Fprintf(w, "rejected:  %s %q failed at %s: %s\n", a.Revision.Short, a.Revision.Message, a.FailedStep, a.Error)
		for _, d := range a.Diagnostics {
			fmt.Fprintf(w, "           %s %s %s\n", d.Severity, d.Code, d.Error())
		}
	}
	if k := st.Kubernetes; k != nil {
		state := "synced"
		switch {
		case !k.Reachable:
			state = "unreachable since " + k.UnreachableSince.Format(time.RFC3339) + ", serving the last known endpoints"
		case !k.Synced:
			state = "not synced yet"
		}
		if k.Error != "" {
			state += ": " + k.Error
		}
		fmt.Fprintf(w, "kubernetes: %s\n", state)
	}
	fmt.Fprintf(w, "serving:   %d proxy classes, %d resources\n\n", st.Classes, st.Resources)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	cols := []string{"NAME", "PROTOCOL"}
	// One column per served type, in push order (snapshot owns the list).
	for _, t := range snapshot.Types() {
		cols = append(cols, snapshot.Abbrev(t))
	}
	fmt.Fprintln(tw, strings.Join(append(cols, "VERSION"), "\t"))
	proxies := px.Proxies
	sort.Slice(proxies, func(i, j int) bool { return proxies[i].NodeID < proxies[j].NodeID })
	for _, p := range proxies {
		row := []string{p.NodeID, p.Protocol}
		byType := map[string]apiv1.TypeStatus{}
		for _, t := range p.Types {
			byType[t.TypeURL] = t
		}
		for _, t := range snapshot.Types() {
			ts, ok := byType[t]
			if !ok {
				row = append(row, "-")
				continue
			}
			row = append(row, string(ts.Status))
		}
		// The server says which revision the proxy runs (the newest it
		// ACKed): a column's own revision lags when a push left that type
		// unchanged, as a weights-only push leaves all but RDS.
		fmt.Fprintln(tw, strings.Join(append(row, source.ShortID(p.Revision)), "\t"))
	}
	tw.Flush()
	for _, p := range proxies {
		for _, t := range p.Types {
			if t.LastNack != nil && t.Status == apiv1.Nacked {
				fmt.Fprintf(w, "\n%s rejected %s: %s", p.NodeID, t.TypeURL[strings.LastIndexByte(t.TypeURL, '.')+1:], t.LastNack.Error)
			}
		}
	}
	for _, r := range px.Rejections {
		fmt.Fprintf(w, "\nrefused %s from %s (%s, %d times): %s", cmp.Or(r.NodeID, "connection"), r.Peer, r.Reason, r.Count, r.Error)
	}
	if len(proxies) == 0 {
		fmt.Fprintln(w, "(no proxies connected)")
	}
	fmt.Fprintln(w)
}

// printDrift prints the drift report's findings, one per line.
func printDrift(w io.Writer, dr api.DriftResponse) {
	r := dr.Report
	if r == nil {
		return
	}
	fmt.Fprintf(w, "\ndrift:     %d errors, %d warnings, %d info", r.Summary.Errors, r.Summary.Warnings, r.Summary.Infos)
	if dr.Publish.LastCommit != "" {
		fmt.Fprintf(w, " (committed %s)", source.ShortID(dr.Publish.LastCommit))
	}
	fmt.Fprintln(w)
	for _, f := range r.Findings {
		fmt.Fprintf(w, "  %s %-7s %s\n", f.Code, f.Severity, f.Message)
	}
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}
