package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/autonode/autonode/accel/benchtable"
)

func addBenchCommands(root *cobra.Command, e *env) {
	bench := &cobra.Command{
		Use:     "bench",
		GroupID: groupTools,
		Short:   "Benchmarks against references measured in the same run",
		Args:    noArgs,
	}
	var opts benchtable.Options
	accelCmd := &cobra.Command{
		Use:   "accel",
		Short: "Compare the CPU kernels with C STREAM, OpenBLAS and the seed's triple loop",
		Long: `Build the references on this machine (a C OpenMP STREAM-style triad and
its add/axpy/sum/dot equivalents, OpenBLAS dgemm/sgemm, and the seed's naive
parallel triple loop) with gcc, run them and AutoNode's kernels in interleaved
rounds, and print one table: kernel, size, AutoNode, reference, ratio
(AutoNode's throughput over the reference's) and the target.

Needs gcc and Debian's libopenblas-dev (apt-get install gcc libopenblas-dev);
a missing one is reported and its rows skipped. Takes about 20 s on a quiet
2-core machine; the machine load is printed before and after, since a busy
machine skews the ratios.`,
		Example: `  autonode bench accel
  autonode bench accel --rounds 9`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			return benchtable.Run(cmd.Context(), e.stdout, opts)
		}),
	}
	accelCmd.Flags().IntVar(&opts.Rounds, "rounds", 0, "interleaved rounds (default 5)")
	accelCmd.Flags().BoolVar(&opts.Quick, "quick", false, "fewer repetitions (a smoke test)")
	bench.AddCommand(accelCmd)
	bench.AddCommand(numpyCommand(e))
	bench.AddCommand(signalCommand(e))
	root.AddCommand(bench)
}

// numpyCommand is "autonode bench numpy": the accel module through
// Starlark scripts against the same operations in NumPy.
func numpyCommand(e *env) *cobra.Command {
	var opts benchtable.NumPyOptions
	var autonode string
	cmd := &cobra.Command{
		Use:   "numpy",
		Short: "Compare the Starlark accel API with NumPy, operation by operation",
		Long: `Run the same operations as .star scripts (through "autonode run") and as
Python scripts with NumPy, in interleaved rounds of fresh processes, and
print one table: each side's median, the ratio of times AutoNode/NumPy (the
median over rounds, with the range) and the goal. Rows: a 16-element a + b
per call in a fresh script and in one with a large heap, x + y on 2^24
float64 elements (with the peak RSS and page faults of each process), and
matrix products of 512 (float64 and float32), 1024 and 2048.

NumPy comes from the first of --python, $AUTONODE_PYTHON, python3 on PATH
and /usr/bin/python3 that imports numpy (Debian: apt-get install
python3-numpy); without one the NumPy column is skipped with a message.
Takes about two minutes on a quiet 2-core machine.`,
		Example: `  autonode bench numpy
  autonode bench numpy --rounds 9 --rows small,large`,
		Args: noArgs,
		RunE: act(func(cmd *cobra.Command, args []string) error {
			if autonode == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bench numpy: cannot find this program to run the scripts with: %w", err)
				}
				autonode = exe
			}
			opts.Autonode = []string{autonode, "run", "--quiet"}
			return benchtable.RunNumPy(cmd.Context(), e.stdout, opts)
		}),
	}
	cmd.Flags().IntVar(&opts.Rounds, "rounds", 0, "interleaved rounds (default 5)")
	cmd.Flags().BoolVar(&opts.Quick, "quick", false, "smaller sizes and fewer repetitions (a smoke test)")
	cmd.Flags().StringVar(&opts.Python, "python", "", "Python interpreter with numpy (default: search, see above)")
	cmd.Flags().StringVar(&autonode, "autonode", "", "autonode binary that runs the .star scripts (default: this one)")
	cmd.Flags().StringSliceVar(&opts.Rows, "rows", nil, "only these rows: small, heap, large, mm512-f64, mm512-f32, mm1024-f64, mm2048-f64")
	return cmd
}
