package httpsession

import (
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// This file decodes into a Go type of the caller's by reflection, for
// GetAs of the types decodeScalar does not know.

// selfDecoding reports whether t, or *t, decodes itself in msgpack.
func selfDecoding(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	for _, it := range selfDecoders {
		if t.Implements(it) || pt.Implements(it) {
			return true
		}
	}
	return false
}

// into decodes a value into v, which is settable, exactly.
func (x decoder) into(v reflect.Value) error {
	t := v.Type()
	if t == timeType {
		tm, err := x.time(t)
		if err == nil {
			v.Set(reflect.ValueOf(tm))
		}
		return err
	}
	c, err := x.peek()
	if err != nil {
		return err
	}
	if c == msgpcode.Nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			v.SetZero()
			return x.rd.d.DecodeNil()
		}
		return &mismatch{"nil", t}
	}
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return x.into(v.Elem())
	}
	if selfDecoding(t) {
		return x.rd.d.DecodeValue(v)
	}
	if msgpcode.IsExt(c) && t.Kind() != reflect.Interface {
		// A type registered with msgpack.RegisterExt decodes itself.
		return x.rd.d.DecodeValue(v)
	}
	switch t.Kind() {
	case reflect.Bool:
		b, err := x.bool(t)
		v.SetBool(b)
		return err
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := x.signed(t.Bits(), t)
		v.SetInt(n)
		return err
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := x.unsigned(t.Bits(), t)
		v.SetUint(n)
		return err
	case reflect.Float32, reflect.Float64:
		f, err := x.float(t.Bits(), t)
		v.SetFloat(f)
		return err
	case reflect.String:
		s, err := x.string(t)
		v.SetString(s)
		return err
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			b, err := x.bytes(t)
			if err == nil {
				v.Set(reflect.ValueOf(b).Convert(t))
			}
			return err
		}
		if !isArray(c) {
			return &mismatch{describe(c), t}
		}
		n, err := x.length(false)
		if err != nil {
			return err
		}
		s := reflect.MakeSlice(t, n, n)
		for i := range n {
			if err := x.into(s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Array:
		return x.array(c, v)
	case reflect.Map:
		return x.mapInto(c, v)
	case reflect.Struct:
		return x.structInto(c, v)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return &mismatch{describe(c), t}
		}
		g, err := x.generic()
		if err == nil && g != nil {
			v.Set(reflect.ValueOf(g))
		}
		return err
	}
	return &mismatch{describe(c), t}
}

func (x decoder) array(c byte, v reflect.Value) error {
	t := v.Type()
	if t.Elem().Kind() == reflect.Uint8 {
		b, err := x.bytes(t)
		if err == nil && len(b) != t.Len() {
			err = &mismatch{fmt.Sprintf("%d bytes", len(b)), t}
		}
		if err == nil {
			reflect.Copy(v, reflect.ValueOf(b))
		}
		return err
	}
	if !isArray(c) {
		return &mismatch{describe(c), t}
	}
	n, err := x.length(false)
	if err != nil {
		return err
	}
	if n != t.Len() {
		return &mismatch{fmt.Sprintf("an array of %d", n), t}
	}
	for i := range n {
		if err := x.into(v.Index(i)); err != nil {
			return err
		}
	}
	return nil
}

func (x decoder) mapInto(c byte, v reflect.Value) error {
	t := v.Type()
	if !isMap(c) {
		return &mismatch{describe(c), t}
	}
	n, err := x.length(true)
	if err != nil {
		return err
	}
	m := reflect.MakeMapWithSize(t, n)
	for range n {
		k := reflect.New(t.Key()).Elem()
		if err := x.into(k); err != nil {
			return err
		}
		e := reflect.New(t.Elem()).Elem()
		if err := x.into(e); err != nil {
			return err
		}
		m.SetMapIndex(k, e)
	}
	v.Set(m)
	return nil
}

// structInto decodes a map, by field name, or an array, by field order,
// into a struct. Keys the struct has no field for are skipped, and fields
// the data has no key for are left alone, so that a struct may gain and
// lose fields between the release that stored a value and the one that
// reads it.
func (x decoder) structInto(c byte, v reflect.Value) error {
	t := v.Type()
	fs := fieldsOf(t)
	switch {
	case isArray(c):
		n, err := x.length(false)
		if err != nil {
			return err
		}
		for i := range n {
			if i >= len(fs.list) {
				if err := x.rd.d.Skip(); err != nil {
					return err
				}
				continue
			}
			f, err := fieldAlloc(v, fs.list[i].index)
			if err == nil {
				err = x.into(f)
			}
			if err != nil {
				return err
			}
		}
		return nil
	case !isMap(c):
		return &mismatch{describe(c), t}
	}
	n, err := x.length(true)
	if err != nil {
		return err
	}
	for range n {
		kc, err := x.peek()
		if err != nil {
			return err
		}
		if !msgpcode.IsString(kc) {
			return &mismatch{"a map with " + describe(kc) + " as a key", t}
		}
		key, err := x.rd.key()
		if err != nil {
			return err
		}
		index, ok := fs.byName[string(key)]
		if !ok {
			if err := x.rd.d.Skip(); err != nil {
				return err
			}
			continue
		}
		f, err := fieldAlloc(v, index)
		if err == nil {
			err = x.into(f)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fieldAlloc returns the field of struct v at index, allocating the
// embedded structs on its way that are nil pointers.
func fieldAlloc(v reflect.Value, index []int) (reflect.Value, error) {
	for i, n := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return v, &mismatch{"a value", v.Type()}
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(n)
	}
	if !v.CanSet() {
		return v, &mismatch{"a value", v.Type()}
	}
	return v, nil
}
