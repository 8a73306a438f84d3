package runtime

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"sort"
	"sync"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/registry"
)

// cacheIndex maps cache keys to the id of a succeeded thread with that
// key. It is built once from the registry, on the first spawn that wants
// it, and updated as threads succeed; a hit is checked against the stored
// record before it is used, so a stale entry only costs a miss.
type cacheIndex struct {
	store registry.Store
	once  sync.Once
	err   error

	mu sync.Mutex
	m  map[string]registry.ID
}

func newCacheIndex(store registry.Store) *cacheIndex {
	return &cacheIndex{store: store, m: map[string]registry.ID{}}
}

// ensure builds the index from the registry, once.
func (c *cacheIndex) ensure() error {
	c.once.Do(func() {
		found := map[string]registry.ID{}
		c.err = c.store.View(func(tx *registry.Tx) error {
			ts, err := tx.List(registry.Filter{Status: registry.StatusSucceeded})
			if err != nil {
				return err
			}
			for _, t := range ts {
				if t.CacheKey != "" {
					found[t.CacheKey] = t.ID
				}
			}
			return nil
		})
		c.mu.Lock()
		for k, id := range found {
			if _, ok := c.m[k]; !ok {
				c.m[k] = id
			}
		}
		c.mu.Unlock()
	})
	return c.err
}

// lookup returns the succeeded thread stored under key, checked in tx.
func (c *cacheIndex) lookup(tx *registry.Tx, key string) (*registry.Thread, bool) {
	c.mu.Lock()
	id, ok := c.m[key]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	t, err := tx.Get(id)
	if err != nil || t.Status != registry.StatusSucceeded || t.CacheKey != key {
		c.mu.Lock()
		if c.m[key] == id {
			delete(c.m, key)
		}
		c.mu.Unlock()
		return nil, false
	}
	return t, true
}

// add records that thread id succeeded with key.
func (c *cacheIndex) add(key string, id registry.ID) {
	if key == "" {
		return
	}
	c.mu.Lock()
	c.m[key] = id
	c.mu.Unlock()
}

// cacheKey returns the key that identifies a thread's work: the body (its
// name, position, the hash of its file's source, and the values of the
// variables it captures and the globals it mentions), the arguments, the
// device, the sandbox flag, the metadata (the body may read it; the
// default work's outcome depends on the memory budget) and, for the
// default work, the spawning script's source. It returns a reason instead
// when the work has no stable key.
func (r *Runtime) cacheKey(req *SpawnRequest, device string, metadata map[string]any, gr *globalsReader) (key, why string) {
	h := sha256.New()
	w := &keyWriter{h: h, r: r, globals: gr, seen: map[*starlark.Function]bool{}}
	w.str("autonode-cache-v1")
	if req.Run == nil {
		w.str(fmt.Sprintf("default-work:matmul:%d:float64", defaultN))
	} else {
		fn, ok := req.Run.(*starlark.Function)
		if !ok {
			return "", fmt.Sprintf("the body %s is a built-in, which has no source to key the cache on", req.Run.Name())
		}
		if err := w.value(fn, 0); err != nil {
			return "", "the body: " + err.Error()
		}
	}
	w.str("args")
	for i, a := range req.Args {
		if err := w.value(a, 0); err != nil {
			return "", fmt.Sprintf("argument %d: %v", i, err)
		}
	}
	kw := slices.Clone(req.Kwargs)
	sort.Slice(kw, func(i, k int) bool { return kw[i][0].String() < kw[k][0].String() })
	w.str("kwargs")
	for _, kv := range kw {
		if len(kv) != 2 {
			return "", "malformed keyword argument"
		}
		w.str(kv[0].String())
		if err := w.value(kv[1], 0); err != nil {
			return "", fmt.Sprintf("keyword argument %s: %v", kv[0], err)
		}
	}
	w.str("device")
	w.str(device)
	// A sandboxed thread must not receive what only an unsandboxed run
	// could compute.
	w.str(fmt.Sprintf("sandbox:%v", req.Sandbox))
	md, err := json.Marshal(metadata)
	if err != nil {
		return "", "metadata: " + err.Error()
	}
	w.str("metadata")
	w.str(string(md))
	// A body's key holds its file's source; the default work is keyed
	// on the spawning script's source instead.
	w.str("script")
	if req.Run == nil && req.Caller != nil {
		if file, ok := req.Caller.Local(localScript).(string); ok {
			w.str(r.funcs.fileSource(file))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), ""
}

// keyWriter feeds length-prefixed parts into a hash.
type keyWriter struct {
	h       hash.Hash
	r       *Runtime
	globals *globalsReader
	seen    map[*starlark.Function]bool
}

func (w *keyWriter) str(s string) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
	w.h.Write(n[:])
	w.h.Write([]byte(s))
}

// value writes a canonical form of v; values without one (accel arrays,
// thread handles, built-ins) are an error.
func (w *keyWriter) value(v starlark.Value, depth int) error {
	if depth > 64 {
		return fmt.Errorf("nested too deeply to key the cache on")
	}
	switch x := v.(type) {
	case starlark.NoneType, starlark.Bool, starlark.Int, starlark.Float, starlark.String, starlark.Bytes:
		w.str(x.Type())
		w.str(x.String())
	case starlark.Tuple:
		w.str(fmt.Sprintf("tuple:%d", len(x)))
		for _, e := range x {
			if err := w.value(e, depth+1); err != nil {
				return err
			}
		}
	case *starlark.List:
		w.str(fmt.Sprintf("list:%d", x.Len()))
		for i := 0; i < x.Len(); i++ {
			if err := w.value(x.Index(i), depth+1); err != nil {
				return err
			}
		}
	case *starlark.Dict:
		return w.unordered("dict", x.Items(), depth)
	case *starlark.Set:
		var items []starlark.Tuple
		iter := x.Iterate()
		var e starlark.Value
		for iter.Next(&e) {
			items = append(items, starlark.Tuple{e})
		}
		iter.Done()
		return w.unordered("set", items, depth)
	case *starlark.Function:
		pos := x.Position()
		w.str("function")
		if w.seen[x] {
			w.str(posKey(pos))
			return nil
		}
		w.seen[x] = true
		w.str(x.Name())
		w.str(posKey(pos))
		src := w.r.funcs.source(x)
		if src == "" {
			return fmt.Errorf("the source of %s (%s) is unknown to this runtime", x.Name(), pos.Filename())
		}
		w.str(src)
		w.str(fmt.Sprintf("free:%d", x.NumFreeVars()))
		for i := 0; i < x.NumFreeVars(); i++ {
			b, fv := x.FreeVar(i)
			w.str(b.Name)
			if c, ok := fv.(*starlark.Function); ok && c == x {
				continue
			}
			if err := w.value(fv, depth+1); err != nil {
				return fmt.Errorf("captured variable %s: %w", b.Name, err)
			}
		}
		// The globals the function reads: their values may differ
		// between runs of the same source (argv, the environment).
		names, known := w.r.funcs.refs(x)
		if !known {
			return fmt.Errorf("the source of %s (%s) is unknown to this runtime", x.Name(), pos.Filename())
		}
		globals, ok := w.globals.of(x)
		if !ok && len(names) > 0 {
			return fmt.Errorf("%s was spawned from another thread while the top level of %s was still running, before that top level spawned anything, so its globals could not be read", x.Name(), pos.Filename())
		}
		for _, name := range names {
			g, ok := globals[name]
			if !ok {
				continue
			}
			w.str("global:" + name)
			if err := w.value(g, depth+1); err != nil {
				return fmt.Errorf("global %s: %w", name, err)
			}
		}
	default:
		return fmt.Errorf("a value of type %s has no stable cache key", v.Type())
	}
	return nil
}

// unordered writes a dict's or set's entries in a canonical order.
func (w *keyWriter) unordered(tag string, items []starlark.Tuple, depth int) error {
	type kv struct {
		sum  string
		item starlark.Tuple
	}
	sorted := make([]kv, 0, len(items))
	for _, it := range items {
		sub := &keyWriter{h: sha256.New(), r: w.r, seen: w.seen}
		for _, e := range it {
			if err := sub.value(e, depth+1); err != nil {
				return err
			}
		}
		sorted = append(sorted, kv{string(sub.h.Sum(nil)), it})
	}
	sort.Slice(sorted, func(i, k int) bool { return sorted[i].sum < sorted[k].sum })
	w.str(fmt.Sprintf("%s:%d", tag, len(items)))
	for _, e := range sorted {
		w.str(e.sum)
	}
	return nil
}
