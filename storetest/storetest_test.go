package storetest

import (
	"reflect"
	"testing"
)

// TestFullRequestSetsEveryField keeps the round-trip fixture complete: a
// field added to approval.Request (or anything it holds) and left zero in
// fullRequest would go untested by "create then get". A field inside a
// slice element counts as set when any element sets it. Fields JSON
// leaves out (Level.When) are not stored, and not asked for.
func TestFullRequestSetsEveryField(t *testing.T) {
	seen := map[string]bool{} // path -> set somewhere
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		set := !v.IsZero()
		seen[path] = seen[path] || set
		if !set {
			return
		}
		switch v.Kind() {
		case reflect.Pointer:
			walk(path, v.Elem())
		case reflect.Struct:
			if v.Type().PkgPath() == "time" {
				return
			}
			for i := range v.NumField() {
				if f := v.Type().Field(i); f.IsExported() && f.Tag.Get("json") != "-" {
					walk(path+"."+f.Name, v.Field(i))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(path+"[]", v.Index(i))
			}
		}
	}
	walk("Request", reflect.ValueOf(fullRequest()))
	for path, set := range seen {
		if !set {
			t.Errorf("fullRequest leaves %s zero", path)
		}
	}
}
