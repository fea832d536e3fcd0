// Package conformance holds gitmesh's end-to-end conformance test: a mesh
// written in CUE is loaded by the real loader, checked, rendered and served
// by the real xDS server, and real grpc-go xDS clients and an xDS-enabled
// grpc-go server (in-process, each with its own bootstrap) must accept every
// resource and behave as the mesh says: canary weights, header routes,
// injected faults and authorization.
//
// grpc-go is the strict peer the project can run anywhere (no Envoy binary
// is available here), so passing this test is the bar for proxyless output.
// The package has no API; everything lives in its tests.
package conformance
