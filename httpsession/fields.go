package httpsession

import (
	"reflect"
	"slices"
	"strings"
	"sync"
)

// fields is how msgpack names a struct type's fields.
type fields struct {
	byName map[string][]int
	list   []field // in the order msgpack encodes them (for arrays)
}

type field struct {
	name  string
	index []int
}

var fieldCache sync.Map // reflect.Type -> *fields

func fieldsOf(t reflect.Type) *fields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fields)
	}
	fs := &fields{byName: map[string][]int{}}
	fs.collect(t, nil)
	fieldCache.Store(t, fs)
	return fs
}

// collect adds t's fields under prefix, following msgpack's rules (its
// getFields): the `msgpack` tag's name or the field's, "-" skips, an alias
// option adds a second name, and an embedded struct is inlined if it has
// the inline option, or if it has no name or noinline option, does not
// decode itself and would shadow no field already named.
func (fs *fields) collect(t reflect.Type, prefix []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := parseTag(f.Tag.Get("msgpack"))
		if tag.name == "-" || (f.PkgPath != "" && !f.Anonymous) {
			continue
		}
		index := append(slices.Clip(prefix), i)
		name := tag.name
		if name == "" {
			name = f.Name
		}
		if f.Anonymous && !tag.has("noinline") {
			if inner, ok := inlinable(f.Type); ok {
				sub := &fields{byName: map[string][]int{}}
				sub.collect(inner, index)
				if tag.has("inline") {
					for _, sf := range sub.list {
						if fs.byName[sf.name] == nil {
							fs.add(sf)
						}
					}
					continue
				}
				if !fs.shadows(sub) {
					for _, sf := range sub.list {
						fs.add(sf)
					}
					continue
				}
			}
		}
		fs.add(field{name, index})
		if alias, ok := tag.options["alias"]; ok && alias != "" {
			fs.byName[alias] = index
		}
	}
}

func (fs *fields) add(f field) {
	fs.byName[f.name] = f.index
	fs.list = append(fs.list, f)
}

func (fs *fields) shadows(sub *fields) bool {
	for _, sf := range sub.list {
		if fs.byName[sf.name] != nil {
			return true
		}
	}
	return false
}

// inlinable returns the struct type an embedded field of type t would be
// inlined as, if msgpack would.
func inlinable(t reflect.Type) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType || selfDecoding(t) {
		return nil, false
	}
	return t, true
}

// tag is a parsed `msgpack` struct tag: "name,option,key:value".
type tag struct {
	name    string
	options map[string]string
}

func parseTag(s string) tag {
	name, rest, _ := strings.Cut(s, ",")
	t := tag{name: strings.TrimSpace(name)}
	for opt := range strings.SplitSeq(rest, ",") {
		if opt = strings.TrimSpace(opt); opt == "" {
			continue
		}
		if t.options == nil {
			t.options = map[string]string{}
		}
		k, v, _ := strings.Cut(opt, ":")
		t.options[k] = v
	}
	return t
}

func (t tag) has(option string) bool {
	_, ok := t.options[option]
	return ok
}
