// Package meshgen writes synthetic but valid mesh repositories of any size,
// so that loader, render and reconciler benchmarks and tests share one
// realistic, deterministic workload instead of each inventing its own.
package meshgen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing/fstest"
)

// Options shapes a generated mesh.
type Options struct {
	// Seed picks the pseudo-random choices (ports, splits, authorization);
	// the same seed and size always give the same bytes.
	Seed int64
	// Unscoped leaves out dependsOn, so every proxy sees the whole mesh
	// (the worst case for render and push fan-out).
	Unscoped bool
	// Protocol of each service's first port: "http" (default), "http2" or
	// "grpc". A second port, when there is one, is always http.
	Protocol string
	// Callees is how many services each one depends on; default 5.
	Callees int
}

// ServiceName is the name of the i-th generated service.
func ServiceName(i int) string { return fmt.Sprintf("svc%05d", i) }

// ServiceFile is the path of the i-th service's file.
func ServiceFile(i int) string { return "services/" + ServiceName(i) + ".cue" }

// Callees returns the services service i depends on: the next k services
// modulo n, so every service also has about k callers.
func Callees(i, n, k int) []int {
	var out []int
	for d := 1; d <= k && d < n; d++ {
		out = append(out, (i+d)%n)
	}
	return out
}

// Generate returns a mesh repository of n services: mesh.cue (STRICT mTLS),
// gateways/ingress.cue routing to the first ten services, and one
// services/svcNNNNN.cue per service with two versions, static endpoints,
// one or two ports, a weighted route with retries and a timeout, and on
// about a third of the services an authorization policy that allows
// exactly their callers.
func Generate(n int, opt Options) fstest.MapFS {
	if opt.Protocol == "" {
		opt.Protocol = "http"
	}
	if opt.Callees <= 0 {
		opt.Callees = 5
	}
	fsys := fstest.MapFS{}
	fsys["mesh.cue"] = &fstest.MapFile{Data: []byte(meshFile), Mode: 0o644}
	fsys["gateways/ingress.cue"] = &fstest.MapFile{Data: []byte(gatewayFile(n)), Mode: 0o644}
	rng := rand.New(rand.NewPCG(uint64(opt.Seed), 0x6d657368))
	for i := 0; i < n; i++ {
		fsys[ServiceFile(i)] = &fstest.MapFile{Data: []byte(serviceFile(i, n, opt, rng)), Mode: 0o644}
	}
	return fsys
}

const meshFile = `package mesh

mesh: {
	name: "generated"
	mtls: "STRICT"
}
`

func gatewayFile(n int) string {
	var b strings.Builder
	b.WriteString("package mesh\n\ngateways: ingress: {\n\tkind: \"ingress\"\n")
	b.WriteString("\tlisteners: [{port: 80, protocol: \"http\", hosts: [\"*.example.com\"]}]\n")
	b.WriteString("\tendpoints: [{address: \"10.255.0.1\"}]\n\troutes: [")
	for i := 0; i < n && i < 10; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{\n\t\tmatch: [{path: prefix: \"/%s\"}]\n\t\tto: [{service: %q, port: 8080}]\n\t}", ServiceName(i), ServiceName(i))
	}
	b.WriteString("]\n}\n")
	return b.String()
}

func serviceFile(i, n int, opt Options, rng *rand.Rand) string {
	name := ServiceName(i)
	twoPorts := rng.IntN(2) == 0
	canary := rng.IntN(2) == 0
	authz := rng.IntN(3) == 0
	var b strings.Builder
	fmt.Fprintf(&b, "package mesh\n\nservices: %s: {\n", name)
	fmt.Fprintf(&b, "\tports: [{name: \"main\", number: 8080, protocol: %q}", opt.Protocol)
	if twoPorts {
		b.WriteString(", {name: \"admin\", number: 9090, targetPort: 19090}")
	}
	b.WriteString("]\n\tversions: {\n")
	for v := 1; v <= 2; v++ {
		fmt.Fprintf(&b, "\t\tv%d: {\n\t\t\tlabels: version: \"v%d\"\n\t\t\tendpoints: [{address: \"10.%d.%d.%d\"}]\n\t\t}\n",
			v, v, (i/250)%250, i%250, v)
	}
	b.WriteString("\t}\n")
	callees := Callees(i, n, opt.Callees)
	if !opt.Unscoped {
		b.WriteString("\tdependsOn: [")
		for j, c := range callees {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", ServiceName(c))
		}
		b.WriteString("]\n")
	}
	w1, w2 := 50, 50
	if canary {
		w1, w2 = 90, 10
	}
	fmt.Fprintf(&b, "\troutes: [{\n\t\tname: \"split\"\n\t\tport: 8080\n")
	fmt.Fprintf(&b, "\t\tto: [{version: \"v1\", weight: %d}, {version: \"v2\", weight: %d}]\n", w1, w2)
	b.WriteString("\t\ttimeout: \"2s\"\n\t\tretries: {attempts: 3, perTryTimeout: \"500ms\"}\n\t}]\n")
	if authz {
		b.WriteString("\tauthorization: allow: [{from: [")
		for j, c := range callers(i, n, opt.Callees) {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "{service: %q}", ServiceName(c))
		}
		b.WriteString("]}]\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// callers are the services whose Callees include i.
func callers(i, n, k int) []int {
	var out []int
	for d := k; d >= 1; d-- {
		if d < n {
			out = append(out, ((i-d)%n+n)%n)
		}
	}
	return out
}
