package comm

import (
	"fmt"
	"reflect"
	"sync"
)

// Data movement takes any pointer-free element type: a numeric kind, an array or a struct of
// them, padding included (the bytes travel as they lie in memory, so both ends must use the
// same type, as with MPI's derived datatypes on one architecture). A type that holds an
// address of any kind (a pointer, string, slice, map, interface, channel, func,
// unsafe.Pointer or uintptr, directly or in an array or struct field) is refused with ErrType
// before anything is sent: its bytes would be addresses in this process, meaningless in
// another.

// TypeError says why an element type cannot be sent: Path is where, within it, the
// offending part lies ("T", "T.Pos[0]", "T.Next"; an array names its element 0).
type TypeError struct {
	Type string // the element type
	Path string // the offending part's place in it
	Kind string // what it is: "pointer", "string", "slice", ...
}

func (e *TypeError) Error() string {
	a := "a"
	if e.Kind == "interface" {
		a = "an"
	}
	if e.Path == e.Type {
		return fmt.Sprintf("element type %s is %s %s: %v", e.Type, a, e.Kind, ErrType)
	}
	return fmt.Sprintf("element type %s holds %s %s at %s: %v", e.Type, a, e.Kind, e.Path, ErrType)
}

func (e *TypeError) Is(target error) bool { return target == ErrType }

// typeChecks caches checkType's answer per type: reflection runs once per element type in a
// process, and then a call pays one map load.
var typeChecks sync.Map // reflect.Type → error (nil error stored as typeOK)

type typeOK struct{}

// checkType reports whether T can be sent as its bytes: nil, or a *TypeError.
func checkType[T any]() error {
	t := reflect.TypeFor[T]()
	// The numeric kinds, the common case, need no cache: the map load showed in the
	// ping-pong latency at small sizes (about half of 20-40 ns added per message).
	if k := t.Kind(); k >= reflect.Bool && k <= reflect.Complex128 && k != reflect.Uintptr {
		return nil
	}
	if v, ok := typeChecks.Load(t); ok {
		if err, bad := v.(error); bad {
			return err
		}
		return nil
	}
	var err error
	if path, kind := pointerIn(t, t.String()); kind != "" {
		err = &TypeError{Type: t.String(), Path: path, Kind: kind}
		typeChecks.Store(t, err)
	} else {
		typeChecks.Store(t, typeOK{})
	}
	return err
}

// pointerIn returns the place and kind of the first part of t that holds a pointer, or
// kind "" if none does. path is t's own place.
func pointerIn(t reflect.Type, path string) (string, string) {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return "", ""
	case reflect.Array:
		return pointerIn(t.Elem(), path+"[0]")
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if p, k := pointerIn(f.Type, path+"."+f.Name); k != "" {
				return p, k
			}
		}
		return "", ""
	case reflect.Uintptr:
		return path, "uintptr" // an address in all but name
	case reflect.Pointer, reflect.UnsafePointer:
		return path, "pointer"
	}
	return path, t.Kind().String() // string, slice, map, interface, chan, func
}
