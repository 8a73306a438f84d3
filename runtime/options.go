package runtime

import (
	"io"

	"github.com/autonode/autonode/registry"
)

// Options configures New. The zero value is ready to use: a registry at
// registry.DefaultPath(), no session token, output to io.Discard, one CPU
// worker per core, one GPU worker, no step budget, host access refused at
// the top level.
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
	// ForbidUnsandboxed makes spawn(sandbox=False) fail.
	ForbidUnsandboxed bool

	// LoadSampler reports memory and CPU use in percent. The runtime
	// calls it from a background goroutine about once a second (never on
	// the spawn path, except once when the first spawn starts the
	// sampler) and refuses spawns while either is above 95%. nil samples
	// the machine with gopsutil.
	LoadSampler func() (memPercent, cpuPercent float64, err error)

	// Argv is visible to scripts as the predeclared list argv.
	Argv []string

	// Progress, when set, is told how a spawn_batch advances: once with
	// done == 0 when its threads are created, then as each of them ends.
	// It is called from a goroutine of the runtime (autonode run draws a
	// progress bar with it when standard error is a terminal).
	Progress func(label string, done, total int)
}
