// Command greeter is one version of the grpc-canary example's Greeter: a
// plain grpc-go server on loopback that answers every call with its
// version, so the client can show which version served it.
//
//	greeter --version v1 --port 50061
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/gitmesh/gitmesh/examples/grpc-canary/hello"
	"github.com/gitmesh/gitmesh/examples/grpc-canary/telemetry"
)

func main() {
	version := flag.String("version", "v1", "version this server answers with")
	port := flag.Int("port", 50061, "loopback port to listen on")
	metricsAddr := flag.String("metrics-addr", "", "serve grpc-go's OpenTelemetry metrics at http://ADDR/metrics (off when empty)")
	namespace := flag.String("namespace", "default", "namespace named in the metrics")
	flag.Parse()

	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatalf("greeter %s: %v", *version, err)
	}
	var opts []grpc.ServerOption
	if *metricsAddr != "" {
		m, err := telemetry.Start(*metricsAddr, telemetry.Workload{Namespace: *namespace, Service: "greeter", Version: *version})
		if err != nil {
			log.Fatalf("greeter %s: %v", *version, err)
		}
		defer m.Close()
		log.Printf("greeter %s: metrics on http://%s/metrics", *version, m.Addr())
		opts = append(opts, m.ServerOption())
	}
	gs := grpc.NewServer(opts...)
	hello.Register(gs, hello.Version(*version))

	// Stop cleanly on Ctrl-C so the demo script leaves no port behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; gs.GracefulStop() }()

	log.Printf("greeter %s listening on %s", *version, lis.Addr())
	if err := gs.Serve(lis); err != nil {
		log.Fatalf("greeter %s: %v", *version, err)
	}
}
