package builtins

import (
	"os"
	"path/filepath"

	"go.starlark.net/starlark"

	"github.com/autonode/autonode/accel"
)

// accel.save and accel.load read and write NumPy's .npy files. They are
// host access, like the host module (see capabilities): the engine decides
// (Engine.HostAccess) and sandboxed thread bodies are refused.

// pathArg is a file path: a non-empty string.
type pathArg string

func (p *pathArg) Unpack(v starlark.Value) error {
	s, ok := v.(starlark.String)
	if !ok {
		return got(v, "a file path (string)")
	}
	if s == "" {
		return gotValue(v, "a non-empty file path")
	}
	*p = pathArg(s)
	return nil
}

// accel.save(path, a): write a as a .npy file, replacing path atomically
func accelSave(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path pathArg
	var a arrayLike
	if err := unpack(fn, args, kwargs, "path", &path, "a", &a); err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	arr, release, err := m.toArray(fn, "a", ex, ctx, a.v)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := saveNPY(string(path), arr); err != nil {
		return nil, errorf(fn, "%s: %v", path, err)
	}
	return starlark.None, nil
}

// saveNPY writes arr to a temporary file beside path and renames it over
// path, so that a failure never leaves a half-written file in its place.
func saveNPY(path string, arr *accel.Array) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := accel.WriteNPY(tmp, arr); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// accel.load(path) -> array, from a .npy file
func accelLoad(m *accelModule, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path pathArg
	if err := unpack(fn, args, kwargs, "path", &path); err != nil {
		return nil, err
	}
	ex, ctx, err := m.env(th, fn)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(string(path))
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	defer f.Close()
	arr, err := ex.ReadNPY(f)
	if err != nil {
		return nil, errorf(fn, "%s: %v", path, trimOp(err, "load"))
	}
	return m.wrap(ex, ctx, arr), nil
}

// trimOp drops accel's operation name from the start of err's message.
func trimOp(err error, op string) string {
	msg := err.Error()
	if len(msg) > len(op)+2 && msg[:len(op)+2] == op+": " {
		return msg[len(op)+2:]
	}
	return msg
}
