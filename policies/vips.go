package policies

import (
	"fmt"
	"net/netip"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkVIPs judges the mesh's VIPs as model.Mesh.VIPs assigns them from Git
// alone (declared and allocated); VIPFindings does the same with the
// addresses discovery found, for serve.
func checkVIPs(c *checker) {
	c.vips(nil)
}

// VIPFindings reports the VIP clashes (GM0304) that discovered addresses
// (Kubernetes ClusterIPs by service name) bring: a clash in which one of
// the two services has discovered addresses. The pipeline runs it before
// render when it has discovery; Check has reported the rest already.
func VIPFindings(m *model.Mesh, discovered map[string][]string) model.Diagnostics {
	if len(discovered) == 0 {
		return nil
	}
	c := &checker{m: m}
	c.vips(discovered)
	c.ds.Sort()
	return c.ds
}

// vips reports a VIP claimed by two services (GM0304): a sidecar's VIP_PORT
// listener (TCP) and an /etc/hosts line can hold only one, so the second
// service's clients would reach the first. The first service by name keeps
// it and the finding points at the second. A declared VIP that is
// vipRange's network or broadcast address (GM0305) is never handed out by
// allocation because hosts cannot use it. Services left without a VIP
// because vipRange is full (GM0306) still work over HTTP (Host) but not as
// TCP services told apart by address. With discovered addresses only the
// clashes they take part in are reported: the rest is Check's.
func (c *checker) vips(discovered map[string][]string) {
	onlyDiscovered := discovered != nil
	a := c.m.VIPs(discovered)
	r, hasRange := model.ParseVIPRange(c.m.Mesh.VIPRange)
	owner := map[string]string{}
	for _, name := range c.m.ServiceNames() {
		for i, v := range a.Addresses[name] {
			path := model.Path("services", name)
			if a.Source[name] == model.VIPDeclared {
				path = model.Index(model.Path("services", name, "addresses"), i)
			}
			if o, dup := owner[v]; dup && o != name {
				if onlyDiscovered && a.Source[name] != model.VIPDiscovered && a.Source[o] != model.VIPDiscovered {
					continue
				}
				c.report(CodeVIPClaimed, path, "VIP %q (%s) is also service %q's (%s); a VIP belongs to one service", v, a.Source[name], o, a.Source[o])
				continue
			}
			owner[v] = name
			if ip, err := netip.ParseAddr(v); err == nil && !onlyDiscovered && hasRange && a.Source[name] == model.VIPDeclared && r.Reserved(ip) {
				c.report(CodeVIPReserved, path, "VIP %q is the network or broadcast address of mesh.vipRange %q", v, c.m.Mesh.VIPRange)
			}
		}
	}
	if len(a.Unallocated) > 0 && !onlyDiscovered {
		who := fmt.Sprintf("service %q", a.Unallocated[0])
		if n := len(a.Unallocated); n > 1 {
			who = fmt.Sprintf("%d services (first %q)", n, a.Unallocated[0])
		}
		c.report(CodeVIPRangeFull, model.Path("mesh", "vipRange"), "no free address left in %q for %s: declare their addresses or widen the range", c.m.Mesh.VIPRange, who)
	}
}
