package registry

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkLogWrite appends log lines through a LogWriter (with its
// rotation at the default limit), against the reference of writing the
// same text to a file through a bufio.Writer:
//
//	go test -run '^$' -bench LogWrite ./registry
func BenchmarkLogWrite(b *testing.B) {
	line := "epoch 12: loss 0.2531, accuracy 0.9143, 1824 samples/s"
	b.Run("LogWriter", func(b *testing.B) {
		s, err := OpenFile(filepath.Join(b.TempDir(), DefaultRegistryFile), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		w, err := s.Logs().OpenLog(context.Background(), 1, LogOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := w.Write(LogEntry{Stream: StreamPrint, Text: line}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("bufio-reference", func(b *testing.B) {
		f, err := os.Create(filepath.Join(b.TempDir(), "ref.log"))
		if err != nil {
			b.Fatal(err)
		}
		bw := bufio.NewWriterSize(f, 64<<10)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			bw.WriteString(line)
			bw.WriteByte('\n')
		}
		bw.Flush()
		f.Sync()
		f.Close()
	})
}

// BenchmarkPutArray stores a 1 MiB float64 array (a new one each time, so
// that nothing is deduplicated), against the reference of writing the
// same bytes to a file and syncing it:
//
//	go test -run '^$' -bench PutArray ./registry
func BenchmarkPutArray(b *testing.B) {
	values := make([]float64, 1<<17)
	npy := func(i int) []byte {
		values[0] = float64(i)
		return npyBytes(values, len(values))
	}
	b.Run("PutArray", func(b *testing.B) {
		s, err := OpenFile(filepath.Join(b.TempDir(), DefaultRegistryFile), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		rs := s.Results()
		b.SetBytes(int64(len(npy(0))))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			data := npy(i)
			b.StartTimer()
			if _, err := rs.PutArray(context.Background(), bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write-sync-reference", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(int64(len(npy(0))))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			data := npy(i)
			b.StartTimer()
			f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)+".npy"))
			if err != nil {
				b.Fatal(err)
			}
			f.Write(data)
			f.Sync()
			f.Close()
		}
	})
}
