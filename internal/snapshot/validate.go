package snapshot

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Validate reports every structural problem of u at once: lists out of
// order, duplicate or empty names, missing versions, and resources filed
// under the wrong type URL. A bad update is never half-applied.
func (u Update) Validate() error { return u.ValidateChanged(nil) }

// ValidateChanged is Validate skipping the classes for which known reports
// true: the server's Apply passes the configs it already serves, which were
// validated when they were first applied, so a one-class change costs one
// class.
func (u Update) ValidateChanged(known func(class string, cfg *ClassConfig) bool) error {
	var errs []error
	// Lists shared between classes are checked once: at 1,000 unscoped
	// classes that is the difference between 2 ms and 50 ms per Apply.
	type listKey struct {
		typeURL string
		first   **Resource
		n       int
	}
	checked := map[listKey]error{}
	if u.Revision == "" {
		errs = append(errs, errors.New("revision is empty"))
	}
	for _, class := range slices.Sorted(maps.Keys(u.Classes)) {
		cfg := u.Classes[class]
		if class == "" || strings.HasPrefix(class, "/") || strings.HasSuffix(class, "/") {
			errs = append(errs, fmt.Errorf("class %q: malformed class name", class))
		}
		if cfg == nil || (known != nil && known(class, cfg)) {
			continue
		}
		check := func(res map[string][]*Resource, what string) {
			for _, typeURL := range slices.Sorted(maps.Keys(res)) {
				list := res[typeURL]
				if len(list) == 0 {
					continue
				}
				k := listKey{typeURL, &list[0], len(list)}
				err, ok := checked[k]
				if !ok {
					err = validateList(typeURL, list)
					checked[k] = err
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("class %q%s: %w", class, what, err))
				}
			}
		}
		check(cfg.Resources, "")
		if sh := cfg.Shared; sh != nil {
			check(sh.Resources, " (shared)")
			if sh.Shared != nil {
				errs = append(errs, fmt.Errorf("class %q: shared config has a shared config of its own", class))
			}
			errs = append(errs, overlaps(class, cfg)...)
		}
	}
	return errors.Join(errs...)
}

// overlaps reports names a class has both in Shared and on its own.
func overlaps(class string, cfg *ClassConfig) []error {
	var errs []error
	for typeURL, own := range cfg.Resources {
		shared := cfg.Shared.Resources[typeURL]
		for _, r := range own {
			if r == nil || len(shared) == 0 {
				continue
			}
			i := sort.Search(len(shared), func(i int) bool { return shared[i] != nil && shared[i].Name >= r.Name })
			if i < len(shared) && shared[i] != nil && shared[i].Name == r.Name {
				errs = append(errs, fmt.Errorf("class %q: %s %q is both shared and its own", class, typeURL, r.Name))
			}
		}
	}
	return errs
}

// validateList checks one type's list of one class.
func validateList(typeURL string, list []*Resource) error {
	var errs []error
	for i, r := range list {
		switch {
		case r == nil:
			errs = append(errs, fmt.Errorf("%s[%d]: nil resource", typeURL, i))
			continue
		case r.Name == "":
			errs = append(errs, fmt.Errorf("%s[%d]: empty name", typeURL, i))
		case r.Version == "":
			errs = append(errs, fmt.Errorf("%s %q: empty version", typeURL, r.Name))
		case r.Any == nil:
			errs = append(errs, fmt.Errorf("%s %q: nil Any", typeURL, r.Name))
		case r.Any.GetTypeUrl() != typeURL:
			errs = append(errs, fmt.Errorf("%s %q: Any has type %q", typeURL, r.Name, r.Any.GetTypeUrl()))
		}
		if i > 0 && list[i-1] != nil && list[i-1].Name >= r.Name {
			errs = append(errs, fmt.Errorf("%s: %q after %q: names must be sorted and unique", typeURL, r.Name, list[i-1].Name))
		}
	}
	return errors.Join(errs...)
}
