package runtime

import (
	"strings"

	"github.com/autonode/autonode/accel"
	// The GPU backends (OpenCL, CUDA, Metal) register themselves; each
	// loads its system library only when probed, so one binary runs
	// everywhere and says which devices it found.
	_ "github.com/autonode/autonode/accel/gpu"
)

// deviceChoice is where a thread runs.
type deviceChoice struct {
	dev  accel.Device
	gpu  bool   // dev is a GPU (the run uses the GPU pool)
	note string // history note when the request could not be honoured
}

// lookupDevice is accel.LookupDevice; tests replace it.
var lookupDevice = accel.LookupDevice

// chooseDevice is the one place that decides the device of a thread:
// "cpu" runs on the CPU; "gpu" (which CRITICAL threads get) and a backend
// name ("cuda", "metal", "opencl") run on that GPU when accel finds one,
// and otherwise on the CPU with a note saying why.
func chooseDevice(requested string) deviceChoice {
	if requested == "" || requested == "cpu" {
		return deviceChoice{dev: accel.CPU()}
	}
	dev, err := lookupDevice(requested)
	if err == nil && dev != nil && dev.Kind() != "cpu" {
		return deviceChoice{dev: dev, gpu: true}
	}
	why := "no device found"
	if err != nil {
		why = err.Error()
	}
	what := "No GPU backend available"
	if requested != "gpu" {
		what = "No " + requested + " backend available"
	}
	return deviceChoice{dev: accel.CPU(), note: what + " (" + strings.TrimSpace(why) + "); running on the CPU."}
}

// deviceLabel is how the seed's history lines name a device: "CPU", "GPU".
func deviceLabel(device string) string {
	if device == "" {
		return "CPU"
	}
	return strings.ToUpper(device)
}

// runLabel names where a run computes, as the seed's history lines do:
// "CPU" or "GPU".
func runLabel(c deviceChoice) string {
	if c.gpu {
		return "GPU"
	}
	return "CPU"
}
