package builtins

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/autonode/autonode/registry"
)

// Limits of the host module.
const (
	// maxHostFile bounds host.read_file.
	maxHostFile = 64 << 20
	// maxExecOutput bounds what host.exec keeps of stdout and of stderr.
	maxExecOutput = 16 << 20
	// maxExecTimeout bounds host.exec's timeout (one day).
	maxExecTimeout = 24 * 3600.0
)

// hostModule returns the host module. Every function is host access: the
// engine decides whether the calling thread may use the host (DESIGN §6;
// see capabilities), and its refusal is returned unchanged apart from the
// function's name.
func hostModule(e Engine) *starlarkstruct.Module {
	fns := map[string]hostFunc{
		"read_file":  readFile,
		"write_file": writeFile,
		"env":        envVar,
		"exec":       execCmd,
	}
	m := &starlarkstruct.Module{Name: "host", Members: starlark.StringDict{}}
	for name, impl := range fns {
		m.Members[name] = newBuiltin(e, "host."+name, func(th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return impl(e, th, fn, args, kwargs)
		})
	}
	return m
}

// hostFunc is the implementation of one host function, called after the
// access check.
type hostFunc func(e Engine, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

// host.read_file(path) -> str
func readFile(e Engine, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path stringArg
	if err := unpack(fn, args, kwargs, "path", &path); err != nil {
		return nil, err
	}
	f, err := os.Open(string(path))
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxHostFile+1))
	if err != nil {
		return nil, wrapErr(fn, err)
	}
	if len(data) > maxHostFile {
		return nil, errorf(fn, "%s is larger than %d MiB", path, maxHostFile>>20)
	}
	return starlark.String(data), nil
}

// host.write_file(path, data)
func writeFile(e Engine, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var path stringArg
	var dataV starlark.Value
	if err := unpack(fn, args, kwargs, "path", &path, "data", &dataV); err != nil {
		return nil, err
	}
	var data string
	switch d := dataV.(type) {
	case starlark.String:
		data = string(d)
	case starlark.Bytes:
		data = string(d)
	default:
		return nil, typeError(fn, "data", dataV, "a str or bytes")
	}
	if err := os.WriteFile(string(path), []byte(data), 0o644); err != nil {
		return nil, wrapErr(fn, err)
	}
	return starlark.None, nil
}

// host.env(name, default=None) -> str or default
func envVar(e Engine, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name stringArg
	var def starlark.Value = starlark.None
	if err := unpack(fn, args, kwargs, "name", &name, "default?", &def); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, valueError(fn, "name", starlark.String(name), "the name of an environment variable")
	}
	if v, ok := os.LookupEnv(string(name)); ok {
		return starlark.String(v), nil
	}
	return def, nil
}

// capWriter keeps at most max bytes and discards the rest.
type capWriter struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room < len(p) {
		w.truncated = true
		if room > 0 {
			w.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return w.buf.Write(p)
}

// host.exec(argv, timeout=10.0) -> struct(code, stdout, stderr)
func execCmd(e Engine, th *starlark.Thread, fn string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var argvV starlark.Value
	var argv stringList
	secs := secondsArg(10.0)
	if err := unpack(fn, args, kwargs, "argv", &argvV, "timeout?", &secs); err != nil {
		return nil, err
	}
	if err := arg(fn, "argv", argvV, &argv); err != nil {
		return nil, err
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, valueError(fn, "argv", argvV, "a non-empty list: the program, then its arguments")
	}
	if secs > maxExecTimeout {
		return nil, errorf(fn, "timeout: got %s, want at most one day (86400 seconds)", registry.PyFloat(float64(secs)))
	}
	limit := time.Duration(float64(secs) * float64(time.Second))
	ctx, cancel := context.WithTimeout(contextOf(e, th), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	stdout := &capWriter{max: maxExecOutput}
	stderr := &capWriter{max: maxExecOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && contextOf(e, th).Err() == nil {
			return nil, errorf(fn, "%s: timed out after %s", argv[0], limit)
		}
		return nil, errorf(fn, "%s: stopped: %v", argv[0], context.Cause(ctx))
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, wrapErr(fn, err)
		}
		code = ee.ExitCode()
	}
	s := starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		"code":   starlark.MakeInt(code),
		"stdout": starlark.String(stdout.buf.String()),
		"stderr": starlark.String(stderr.buf.String()),
	})
	s.Freeze()
	return s, nil
}
