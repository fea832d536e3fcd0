package envoystrict

import "testing"

func TestRuleUniqueNames(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "a cluster twice", code: CodeConflict, want: `gets two clusters named "c"`,
			own: append(valid(t), edsCluster("c"))},
		{name: "a listener twice", code: CodeConflict, want: `gets two listeners named "l"`,
			own: append(valid(t), httpListener(t, "l", "0.0.0.0", 81, "r"))},
		{name: "a route config twice", code: CodeConflict, want: `gets two route configs named "r"`,
			own: append(valid(t), routeConfig("r", "c", []string{"z"}))},
		{name: "a name both shared and own", code: CodeConflict, want: `cluster "c" both in its shared layer and on its own`,
			shared: valid(t), own: msgs(edsCluster("c"))},
		{name: "distinct names", own: with(t, edsCluster("c2"), assignment("c2"))},
	})
}
