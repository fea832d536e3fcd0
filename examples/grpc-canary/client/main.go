// Command client is the grpc-canary example's proxyless gRPC client: it
// dials an xds:/// target, so grpc-go asks gitmesh where "greeter" is and
// how to split traffic, sends a steady stream of RPCs and prints once per
// second which versions answered:
//
//	12:00:01  v1 ##################..  90%  v2 ##..................  10%   (50 rpcs)
//
// It needs GRPC_XDS_BOOTSTRAP pointing at a bootstrap from
// `gitmesh bootstrap --proxy proxyless/default/client/v1/NAME`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and balancers

	"github.com/gitmesh/gitmesh/examples/grpc-canary/hello"
	"github.com/gitmesh/gitmesh/examples/grpc-canary/telemetry"
)

func main() {
	target := flag.String("target", "xds:///greeter:50051", "gRPC target to call")
	rate := flag.Int("rate", 50, "RPCs per second")
	width := flag.Int("width", 20, "bar width per version")
	metricsAddr := flag.String("metrics-addr", "", "serve grpc-go's OpenTelemetry metrics at http://ADDR/metrics (off when empty)")
	namespace := flag.String("namespace", "default", "namespace named in the metrics")
	flag.Parse()
	if os.Getenv("GRPC_XDS_BOOTSTRAP") == "" && os.Getenv("GRPC_XDS_BOOTSTRAP_CONFIG") == "" && strings.HasPrefix(*target, "xds:") {
		log.Fatal("client: set GRPC_XDS_BOOTSTRAP to the file `gitmesh bootstrap` wrote")
	}

	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if *metricsAddr != "" {
		m, err := telemetry.Start(*metricsAddr, telemetry.Workload{Namespace: *namespace, Service: "client", Version: "v1"})
		if err != nil {
			log.Fatalf("client: %v", err)
		}
		defer m.Close()
		log.Printf("client: metrics on http://%s/metrics", m.Addr())
		opts = append(opts, m.DialOption())
	}
	cc, err := grpc.NewClient(*target, opts...)
	if err != nil {
		log.Fatalf("client: dial %s: %v", *target, err)
	}
	defer cc.Close()
	c := hello.NewClient(cc)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	send := time.NewTicker(time.Second / time.Duration(max(*rate, 1)))
	defer send.Stop()
	report := time.NewTicker(time.Second)
	defer report.Stop()

	counts := map[string]int{}
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-report.C:
			fmt.Println(now.Format("15:04:05 "), line(counts, *width))
			counts = map[string]int{}
		case <-send.C:
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			v, err := c.SayHello(rctx, "canary")
			cancel()
			if err != nil {
				v = "error(" + status.Code(err).String() + ")"
			}
			counts[v]++
		}
	}
}

// line renders one second of answers as bars, versions in name order.
func line(counts map[string]int, width int) string {
	total := 0
	keys := make([]string, 0, len(counts))
	for k, n := range counts {
		keys = append(keys, k)
		total += n
	}
	if total == 0 {
		return "(no rpcs)"
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		filled := (counts[k]*width + total/2) / total
		fmt.Fprintf(&b, "%s %s%s %3d%%  ", k, strings.Repeat("#", filled), strings.Repeat(".", width-filled), (counts[k]*100+total/2)/total)
	}
	fmt.Fprintf(&b, " (%d rpcs)", total)
	return b.String()
}
