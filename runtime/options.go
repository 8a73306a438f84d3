package runtime

import (
	"io"
	"io/fs"
	"time"

	"github.com/autonode/autonode/registry"
)

// Default spawn bounds of thread bodies (Options.MaxChildren and
// Options.MaxDescendants).
const (
	DefaultMaxChildren    = 32
	DefaultMaxDescendants = 256
)

// Options configures New. The zero value is ready to use: a registry at
// registry.DefaultPath(), no session token, output to io.Discard, one CPU
// worker per core, one GPU worker, no step budget, host access refused at
// the top level, every load() refused, and thread bodies that may spawn
// DefaultMaxChildren threads each and DefaultMaxDescendants in all.
type Options struct {
	// RegistryPath is the registry file to open; "" means
	// registry.DefaultPath(). Ignored when Store or NATS is set.
	RegistryPath string
	// NATS, when set, is the URL of a NATS JetStream server (or a
	// comma-separated list of a cluster's) whose KV bucket NATSBucket
	// ("" means natsstore.DefaultBucket) holds the registry instead of
	// RegistryPath (registry/natsstore). Ignored when Store is set.
	NATS       string
	NATSBucket string
	// Store, when set, is used instead of opening RegistryPath. The
	// Runtime does not close a Store it did not open.
	Store registry.Store
	// Remote leaves the threads that scripts spawn (top-level spawn,
	// spawn_batch and run) to `autonode worker` processes: each is
	// created as usual and its attempt published on the registry's work
	// queue, its body, arguments and captured values travelling with it
	// (one that cannot travel is refused with ErrCannotTravel); wait()
	// waits on the record. It needs a registry on NATS (NATS, or a Store
	// from registry/natsstore); ErrRemoteNeedsNATS otherwise.
	Remote bool

	// SessionToken is the token used when a builtin gets token=None
	// (the CLI fills it from --token or AUTONODE_TOKEN). Threads spawned
	// with another token are owned by both.
	SessionToken string

	// Stdout receives Starlark print() output; nil discards it.
	Stdout io.Writer
	// Stderr receives the runtime's own notices (threads marked crashed,
	// records that could not be persisted); nil discards them.
	Stderr io.Writer

	// CPUWorkers bounds the thread bodies running at once on the CPU;
	// <= 0 means runtime.NumCPU().
	CPUWorkers int
	// GPUWorkers bounds the thread bodies running at once on a GPU;
	// <= 0 means 1.
	GPUWorkers int

	// MaxSteps is the Starlark step budget of every run: each thread
	// body, and each top-level ExecFile, Eval or Call. 0 means unlimited.
	MaxSteps uint64

	// TopLevelHost lets a script's top level call the host module
	// (autonode run sets it: the script is the user's own automation).
	// Thread bodies follow their sandbox flag regardless.
	TopLevelHost bool
	// ForbidUnsandboxed refuses every way to get an unsandboxed thread:
	// spawn(sandbox=False), a branch, fork, merge or mutate whose result
	// has sandbox=False, and running such a record. The errors wrap
	// ErrUnsandboxedForbidden.
	ForbidUnsandboxed bool

	// MaxChildren bounds the threads one thread body may spawn (each
	// spawn_batch spec counts); MaxDescendants bounds the threads spawned
	// from the bodies under one top-level thread, at any depth. Spawns
	// from a script's top level are not bounded. 0 means
	// DefaultMaxChildren and DefaultMaxDescendants; a negative value
	// forbids spawning from thread bodies. A refused spawn's error wraps
	// ErrSpawnLimit. A body's children are sandboxed when it is, get at
	// most the TTL it has left, and are cancelled when it ends.
	MaxChildren    int
	MaxDescendants int

	// What load() may read. LoadFunc, when set, resolves every load; else
	// LoadFS, when set, serves modules from a file system (paths are
	// slash-separated, relative to the loading module, and may not leave
	// it; os.OpenRoot(dir).FS() is one that also refuses symbolic links
	// leading out); else modules are files below LoadDir and the
	// AllowLoad directories, resolved against the loading file's
	// directory, refused when "..", an absolute path or a symbolic link
	// leads outside them. With none of them set, every load() is refused.
	// Only regular files are read, at most MaxLoadBytes each (0 means
	// DefaultMaxLoadBytes). Refusals wrap ErrLoadDenied or
	// ErrLoadTooLarge.
	LoadDir      string
	AllowLoad    []string
	LoadFS       fs.FS
	LoadFunc     LoadFunc
	MaxLoadBytes int64

	// LoadSampler reports memory and CPU use in percent. The runtime
	// calls it from a background goroutine about once a second (never on
	// the spawn path). A thread does not start while memory use is above
	// 95% (memory admission; CPU use never holds a thread back: the
	// worker pools queue threads): it waits up to MemoryWait, then fails
	// with an error wrapping ErrNoMemory. nil samples the machine with
	// gopsutil, counting the cgroup's memory limit; with it, a thread
	// whose metadata sets max_memory_mb also waits until that much memory
	// is free.
	LoadSampler func() (memPercent, cpuPercent float64, err error)
	// MemoryWait bounds how long a thread waits for memory before it
	// fails; 0 means DefaultMemoryWait (30 s), a negative value fails at
	// once.
	MemoryWait time.Duration

	// Argv is visible to scripts as the predeclared list argv.
	Argv []string

	// Progress, when set, is told how a spawn_batch advances: once with
	// done == 0 when its threads are created, then as each of them ends.
	// It is called from a goroutine of the runtime (autonode run draws a
	// progress bar with it when standard error is a terminal).
	Progress func(label string, done, total int)
}
