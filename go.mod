module github.com/gitmesh/gitmesh

go 1.26.0

require (
	cuelang.org/go v0.17.1
	github.com/envoyproxy/go-control-plane v0.14.0
	github.com/envoyproxy/go-control-plane/envoy v1.40.0
	github.com/fluxcd/pkg/git v0.52.0
	github.com/go-git/go-git/v5 v5.19.3
	github.com/google/go-cmp v0.7.0
	github.com/prometheus/client_golang v1.25.0
	github.com/spf13/cobra v1.10.2
	google.golang.org/grpc v1.85.0
	k8s.io/client-go v0.37.2
	sigs.k8s.io/yaml v1.6.0
)
