package main

import (
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
	root.AddCommand(bench)
}
