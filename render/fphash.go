package render

import (
	"encoding/binary"
	"math"
	"reflect"
	"slices"
)

// appendValue appends a canonical encoding of v (model values: structs,
// pointers, slices, maps with string keys, strings, numbers, booleans) to
// buf, every field included (also those JSON leaves out), so a fingerprint
// changes whenever anything a build could read changes, including fields
// added to the model later. It reports false for a kind it does not know
// (then the caller caches nothing). It is several times cheaper than
// encoding/json, which matters: every service is fingerprinted on every
// render.
func appendValue(buf []byte, v reflect.Value) ([]byte, bool) {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	case reflect.Bool:
		b := byte(0)
		if v.Bool() {
			b = 1
		}
		buf = append(buf, b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		buf = binary.AppendVarint(buf, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		buf = binary.AppendUvarint(buf, v.Uint())
	case reflect.Float32, reflect.Float64:
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v.Float()))
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return append(buf, 0), true
		}
		buf = append(buf, 1)
		if v.Kind() == reflect.Interface {
			t := v.Elem().Type().String()
			buf = binary.AppendUvarint(buf, uint64(len(t)))
			buf = append(buf, t...)
		}
		return appendValue(buf, v.Elem())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return append(buf, 0), true
		}
		buf = binary.AppendUvarint(buf, uint64(v.Len())+1)
		for i := range v.Len() {
			var ok bool
			if buf, ok = appendValue(buf, v.Index(i)); !ok {
				return buf, false
			}
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return buf, false
		}
		if v.IsNil() {
			return append(buf, 0), true
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			switch {
			case a.String() < b.String():
				return -1
			case a.String() > b.String():
				return 1
			}
			return 0
		})
		buf = binary.AppendUvarint(buf, uint64(len(keys))+1)
		for _, k := range keys {
			var ok bool
			if buf, ok = appendValue(buf, k); !ok {
				return buf, false
			}
			if buf, ok = appendValue(buf, v.MapIndex(k)); !ok {
				return buf, false
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			var ok bool
			if buf, ok = appendValue(buf, v.Field(i)); !ok {
				return buf, false
			}
		}
	default:
		return buf, false
	}
	return buf, true
}
