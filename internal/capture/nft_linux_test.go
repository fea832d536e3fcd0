package capture

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/nftables/binaryutil"
)

// TestNFTRulesRefuse: the translation to nftables refuses what it cannot
// spell rather than dropping a match (which would widen the rule).
func TestNFTRulesRefuse(t *testing.T) {
	for _, args := range [][]string{
		{"-p", "sctp", "-j", "RETURN"},
		{"!", "-p", "tcp", "-j", "RETURN"},
		{"-i", "eth0", "-j", "RETURN"},
		{"--dport", "80", "-j", "RETURN"},
		{"-j", "REDIRECT"},
		{"-d"},
	} {
		r := Rule{Chain: ChainOutput, Args: args}
		if _, err := NFTRules(Table{Family: IPv4, Rules: []Rule{r}}); err == nil || !strings.Contains(err.Error(), r.String()) {
			t.Errorf("%q: got %v, want an error naming the rule", r.String(), err)
		}
	}
}

// TestNFTRulesExprs pins the kernel expressions of the matches whose
// bytes matter: a masked destination, a negated owner, the redirect.
func TestNFTRulesExprs(t *testing.T) {
	rules, err := NFTRules(Table{Family: IPv4, Rules: []Rule{
		{Chain: ChainOutput, Args: []string{"-d", "10.10.0.0/16", "-j", "RETURN"}},
		{Chain: ChainOutput, Args: []string{"-o", "lo", "-m", "owner", "!", "--uid-owner", "1337", "-j", "RETURN"}},
		{Chain: ChainRedirect, Args: []string{"-p", "tcp", "-j", "REDIRECT", "--to-ports", "15001"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rules {
		s := r.Chain + ": " + r.Text + " ="
		for _, x := range r.Exprs {
			s += fmt.Sprintf(" %T%+v", x, x)
		}
		got = append(got, s)
	}
	want := []string{
		"ISTIO_OUTPUT: ip daddr 10.10.0.0/16 return = *expr.Payload&{OperationType:0 DestRegister:1 SourceRegister:0 Base:1 Offset:16 Len:4 CsumType:0 CsumOffset:0 CsumFlags:0} *expr.Bitwise&{SourceRegister:1 DestRegister:1 Len:4 Mask:[255 255 0 0] Xor:[0 0 0 0]} *expr.Cmp&{Op:0 Register:1 Data:[10 10 0 0]} *expr.Verdict&{Kind:-5 Chain:}",
		"ISTIO_OUTPUT: oifname \"lo\" meta skuid != 1337 return = *expr.Meta&{Key:7 SourceRegister:false Register:1} *expr.Cmp&{Op:0 Register:1 Data:[108 111 0 0 0 0 0 0 0 0 0 0 0 0 0 0]} *expr.Meta&{Key:10 SourceRegister:false Register:1} *expr.Cmp&{Op:1 Register:1 Data:" + fmt.Sprint(binaryutil.NativeEndian.PutUint32(1337)) + "} *expr.Verdict&{Kind:-5 Chain:}",
		"ISTIO_REDIRECT: meta l4proto tcp redirect to :15001 = *expr.Meta&{Key:16 SourceRegister:false Register:1} *expr.Cmp&{Op:0 Register:1 Data:[6]} *expr.Immediate&{Register:1 Data:[58 153]} *expr.Redir&{RegisterProtoMin:1 RegisterProtoMax:0 Flags:0}",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
