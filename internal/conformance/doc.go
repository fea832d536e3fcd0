// Package conformance holds gitmesh's end-to-end conformance test: a mesh
// written in CUE is loaded by the real loader, checked, rendered and served
// by the real xDS server, and real grpc-go xDS clients and an xDS-enabled
// grpc-go server (in-process, each with its own bootstrap) must accept every
// resource and behave as the mesh says: canary weights, header routes,
// injected faults and authorization. The mesh's declared traffic tests are
// sent by real grpc-go clients too (traffic_test.go): render/traffic's
// evaluation and grpc-go must agree on every one.
//
// grpc-go is the strict peer the project can run anywhere (no Envoy binary
// is available here), so passing this test is the bar for proxyless output.
// The package has no API; everything lives in its tests.
package conformance
