package nodeid

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		id       string
		class    Class
		instance string
		err      string
	}{
		{id: "sidecar/default/reviews/v2/reviews-v2-7f9c", instance: "reviews-v2-7f9c",
			class: Class{Name: "sidecar/default/reviews/v2", Kind: KindSidecar, Namespace: "default", Service: "reviews", Version: "v2"}},
		{id: "proxyless/default/greeter/v1/pod-1", instance: "pod-1",
			class: Class{Name: "proxyless/default/greeter/v1", Kind: KindProxyless, Namespace: "default", Service: "greeter", Version: "v1"}},
		{id: "ingress/edge/edge-0", instance: "edge-0", class: Class{Name: "ingress/edge", Kind: KindIngress, Gateway: "edge"}},
		{id: "egress/egress/e-1", instance: "e-1", class: Class{Name: "egress/egress", Kind: KindEgress, Gateway: "egress"}},
		{id: "", err: `empty node id; want CLASS/INSTANCE, like "sidecar/default/reviews/v2/reviews-v2-7f9c"`},
		{id: "reviews", err: `node id "reviews" is not CLASS/INSTANCE (like "sidecar/default/reviews/v2/reviews-v2-7f9c")`},
		{id: "sidecar/default/reviews/v2", err: `node id "sidecar/default/reviews/v2": want sidecar/NAMESPACE/SERVICE/VERSION/INSTANCE (got 4 parts)`},
		{id: "ingress/edge", err: `node id "ingress/edge": want ingress/GATEWAY/INSTANCE (got 2 parts)`},
		{id: "ingress/edge/a/b", err: `node id "ingress/edge/a/b": want ingress/GATEWAY/INSTANCE (got 4 parts)`},
		{id: "sidecar/default//v2/x", err: `node id "sidecar/default//v2/x": empty service`},
		{id: "sidecar/default/a/v1/", err: `node id "sidecar/default/a/v1/": empty instance`},
		{id: "router/x/y", err: `node id "router/x/y": unknown proxy kind "router" (want sidecar, proxyless, ingress or egress)`},
	}
	for _, tt := range tests {
		class, inst, err := Parse(tt.id)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Parse(%q) error = %v, want %s", tt.id, err, tt.err)
			}
			continue
		}
		if err != nil || class != tt.class || inst != tt.instance {
			t.Errorf("Parse(%q) = %+v, %q, %v; want %+v, %q", tt.id, class, inst, err, tt.class, tt.instance)
		}
	}
}

func TestParseClass(t *testing.T) {
	for _, name := range []string{Sidecar("ns", "svc", "v1"), Proxyless("ns", "svc", "v1"), Gateway(KindIngress, "gw"), Gateway(KindEgress, "gw")} {
		c, err := ParseClass(name)
		if err != nil || c.Name != name || c.String() != name {
			t.Errorf("ParseClass(%q) = %+v, %v", name, c, err)
		}
	}
	for name, want := range map[string]string{
		"sidecar/ns/svc":      `class "sidecar/ns/svc": want sidecar/NAMESPACE/SERVICE/VERSION (got 3 parts)`,
		"egress/":             `class "egress/": empty gateway`,
		"mesh/x":              `class "mesh/x": unknown proxy kind "mesh" (want sidecar, proxyless, ingress or egress)`,
		"ingress/gw/instance": `class "ingress/gw/instance": want ingress/GATEWAY (got 3 parts)`,
	} {
		if _, err := ParseClass(name); err == nil || err.Error() != want {
			t.Errorf("ParseClass(%q) error = %v, want %s", name, err, want)
		}
	}
}
