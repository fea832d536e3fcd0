package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// envPrefix is the prefix of environment variables that set flags:
// --xds-addr is GITMESH_XDS_ADDR.
const envPrefix = "GITMESH_"

// envName is the variable that sets a flag.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag the command line did not set from its
// GITMESH_* variable, so containers can be configured without argv (where
// anyone with `ps` can read it). The command line wins over the environment.
func applyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		v, ok := lookup(envName(f.Name))
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = usageError("%s: %v", envName(f.Name), e)
			return
		}
		// checkFlags names the variable, not the flag, if the value is bad.
		fs.SetAnnotation(f.Name, annoFromEnv, []string{"true"})
	})
	if err != nil {
		return err
	}
	return nil
}

// describeEnv appends "(env GITMESH_X)" to each flag's usage so --help
// documents the variables.
func describeEnv(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		f.Usage = fmt.Sprintf("%s (env %s)", f.Usage, envName(f.Name))
	})
}
