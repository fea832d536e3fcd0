//go:build linux

package capture

import (
	"context"
	"fmt"
	"os"

	"github.com/google/nftables"
)

var _ Backend = NFT{}

// NFT programs the rules through nftables over netlink (no binary needed:
// the gitmesh image has none), in table NFTTable of each family.
type NFT struct {
	// NetNS is the path of a network namespace to act in, such as
	// /run/netns/NAME (the tests use it); empty is the current one.
	NetNS string
}

// conn opens a netlink connection in e.NetNS; done closes what it opened.
func (e NFT) conn() (c *nftables.Conn, done func(), err error) {
	if e.NetNS == "" {
		c, err = nftables.New()
		return c, func() {}, err
	}
	f, err := os.Open(e.NetNS)
	if err != nil {
		return nil, nil, err
	}
	c, err = nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, func() { f.Close() }, nil
}

// Apply installs rs: one netlink batch (one nf_tables transaction: all or
// nothing, for every family at once) adds our table, deletes it with
// whatever an earlier run left in it, and adds it again with its chains
// and rules. Running it twice leaves one copy; other tables are untouched.
func (e NFT) Apply(_ context.Context, rs RuleSet) error {
	type built struct {
		t     Table
		rules []NFTRule
	}
	var all []built
	for _, t := range rs.Tables() {
		rules, err := NFTRules(t)
		if err != nil {
			return err
		}
		all = append(all, built{t, rules})
	}
	c, done, err := e.conn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer done()
	for _, b := range all {
		fam, _ := nftFamily(b.t.Family)
		tbl := &nftables.Table{Name: NFTTable, Family: fam}
		c.AddTable(tbl)
		c.DelTable(tbl)
		c.AddTable(tbl)
		chains := map[string]*nftables.Chain{}
		for _, d := range nftChains() {
			ch := &nftables.Chain{Name: d.name, Table: tbl}
			if d.hook != "" {
				hook := nftables.ChainHookPrerouting
				if d.hook == "output" {
					hook = nftables.ChainHookOutput
				}
				accept := nftables.ChainPolicyAccept
				ch.Type, ch.Hooknum, ch.Policy = nftables.ChainTypeNAT, hook, &accept
				ch.Priority = nftables.ChainPriorityRef(nftPriority)
			}
			chains[d.name] = c.AddChain(ch)
		}
		for _, r := range b.rules {
			ch, ok := chains[r.Chain]
			if !ok {
				return fmt.Errorf("nftables: rule %q: no chain %q in table %s", r.Text, r.Chain, NFTTable)
			}
			c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: r.Exprs})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: install table %s: %w", NFTTable, err)
	}
	return nil
}

// Cleanup deletes our table (and the IPv6 one with ipv6) in one batch; it
// succeeds when there is none (the batch declares the table first, as
// `nft add table; nft delete table` does).
func (e NFT) Cleanup(_ context.Context, ipv6 bool) error {
	c, done, err := e.conn()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer done()
	for _, f := range families(ipv6) {
		fam, _ := nftFamily(f)
		tbl := &nftables.Table{Name: NFTTable, Family: fam}
		c.AddTable(tbl)
		c.DelTable(tbl)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table %s: %w", NFTTable, err)
	}
	return nil
}

// NFTState describes what our tables hold in the kernel, chain by chain
// and rule by rule (expressions as the library decodes them, without
// handles), so two states can be compared; "" when there is no table.
func (e NFT) NFTState(f Family) (string, error) {
	c, done, err := e.conn()
	if err != nil {
		return "", err
	}
	defer done()
	fam, name := nftFamily(f)
	tables, err := c.ListTablesOfFamily(fam)
	if err != nil {
		return "", err
	}
	var tbl *nftables.Table
	for _, t := range tables {
		if t.Name == NFTTable {
			tbl = t
		}
	}
	if tbl == nil {
		return "", nil
	}
	chains, err := c.ListChainsOfTableFamily(fam)
	if err != nil {
		return "", err
	}
	s := "table " + name + " " + NFTTable + "\n"
	for _, ch := range chains {
		if ch.Table.Name != NFTTable {
			continue
		}
		s += "chain " + ch.Name + "\n"
		rules, err := c.GetRules(tbl, ch)
		if err != nil {
			return "", err
		}
		for _, r := range rules {
			s += "rule"
			for _, x := range r.Exprs {
				s += fmt.Sprintf(" %T%+v", x, x)
			}
			s += "\n"
		}
	}
	return s, nil
}
