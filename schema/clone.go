package schema

import (
	"reflect"
	"sync"
)

// cloneModel deep-copies a decoded entity (*model.Service,
// *model.MeshConfig …). A Cache keeps its own copy of every result and hands
// each load a fresh one, so a caller that changes its mesh (sorting a slice,
// filling a default) cannot change what a later load returns. Reflection
// keeps it right when the model grows fields; the copier of each type is
// built once, as looking types up per value was a third of the cost.
func cloneModel(x any) any {
	if x == nil {
		return nil
	}
	v := reflect.ValueOf(x)
	return copierOf(v.Type())(v).Interface()
}

// copier returns a deep copy of a value of one type.
type copier func(reflect.Value) reflect.Value

var (
	copiersMu sync.Mutex
	copiers   = map[reflect.Type]copier{}
)

// copierOf returns the copier of t, building it on first use.
func copierOf(t reflect.Type) copier {
	copiersMu.Lock()
	defer copiersMu.Unlock()
	return buildCopier(t, map[reflect.Type]*copier{})
}

// buildCopier builds t's copier; building holds the copiers under
// construction, so recursive types refer to themselves.
func buildCopier(t reflect.Type, building map[reflect.Type]*copier) copier {
	if c, ok := copiers[t]; ok {
		return c
	}
	if p, ok := building[t]; ok {
		return func(v reflect.Value) reflect.Value { return (*p)(v) }
	}
	if !hasRefs(t, map[reflect.Type]bool{}) {
		return func(v reflect.Value) reflect.Value { return v }
	}
	slot := new(copier)
	building[t] = slot
	var c copier
	switch t.Kind() {
	case reflect.Pointer:
		elem := buildCopier(t.Elem(), building)
		c = func(v reflect.Value) reflect.Value {
			if v.IsNil() {
				return v
			}
			n := reflect.New(t.Elem())
			n.Elem().Set(elem(v.Elem()))
			return n
		}
	case reflect.Struct:
		var fields []int
		var fcs []copier
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.IsExported() && hasRefs(f.Type, map[reflect.Type]bool{}) {
				fields = append(fields, i)
				fcs = append(fcs, buildCopier(f.Type, building))
			}
		}
		c = func(v reflect.Value) reflect.Value {
			n := reflect.New(t).Elem()
			n.Set(v)
			for k, i := range fields {
				n.Field(i).Set(fcs[k](v.Field(i)))
			}
			return n
		}
	case reflect.Slice:
		elem := buildCopier(t.Elem(), building)
		deep := hasRefs(t.Elem(), map[reflect.Type]bool{})
		c = func(v reflect.Value) reflect.Value {
			if v.IsNil() {
				return v
			}
			n := reflect.MakeSlice(t, v.Len(), v.Len())
			if !deep {
				reflect.Copy(n, v)
				return n
			}
			for i := 0; i < v.Len(); i++ {
				n.Index(i).Set(elem(v.Index(i)))
			}
			return n
		}
	case reflect.Array:
		elem := buildCopier(t.Elem(), building)
		c = func(v reflect.Value) reflect.Value {
			n := reflect.New(t).Elem()
			for i := 0; i < v.Len(); i++ {
				n.Index(i).Set(elem(v.Index(i)))
			}
			return n
		}
	case reflect.Map:
		key, elem := buildCopier(t.Key(), building), buildCopier(t.Elem(), building)
		c = func(v reflect.Value) reflect.Value {
			if v.IsNil() {
				return v
			}
			n := reflect.MakeMapWithSize(t, v.Len())
			it := v.MapRange()
			for it.Next() {
				n.SetMapIndex(key(it.Key()), elem(it.Value()))
			}
			return n
		}
	case reflect.Interface:
		c = func(v reflect.Value) reflect.Value {
			if v.IsNil() {
				return v
			}
			n := reflect.New(t).Elem()
			n.Set(copierOf(v.Elem().Type())(v.Elem()))
			return n
		}
	default:
		// Channels, funcs and unsafe pointers are not data; the model has
		// none, and sharing them is all one could do.
		c = func(v reflect.Value) reflect.Value { return v }
	}
	*slot = c
	delete(building, t)
	copiers[t] = c
	return c
}

// hasRefs reports whether values of t can share memory when assigned
// (strings are immutable, so they cannot).
func hasRefs(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return hasRefs(t.Elem(), seen)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			if hasRefs(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}
