package render

import "strings"

// HostsFile is name resolution without Kubernetes DNS: /etc/hosts lines
// `VIP NAME.NS.svc.DOMAIN NAME.NS NAME` for every VIP of every service
// (model.Mesh.VIPs over the input's discovered addresses, the assignment
// render binds VIP listeners to), in service name order, for an init
// container to append (`gitmesh render DIR -o hosts >> /etc/hosts`). The
// bare NAME is there because services are named uniquely mesh-wide;
// NAME.NS.svc is left out as it would resolve only with a search domain.
// Services without a VIP (vipRange "" or full) have no line.
func HostsFile(in Input) string {
	m := in.Mesh
	a := m.VIPs(in.Addresses)
	var b strings.Builder
	b.WriteString("# gitmesh mesh " + m.Mesh.Name + ": service VIPs\n")
	for _, name := range m.ServiceNames() {
		s := m.Services[name]
		for _, vip := range a.Addresses[name] {
			b.WriteString(vip + " " + m.Host(s) + " " + s.Name + "." + s.Namespace + " " + s.Name + "\n")
		}
	}
	return b.String()
}
