package snapshot

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain backs up the per-test VerifyNoLeaks: no goroutine of this package
// may outlive the tests and benchmarks of the binary.
func TestMain(m *testing.M) {
	code := m.Run()
	if leaked := waitForNoGoroutines(); len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "%d goroutines leaked:\n%s\n", len(leaked), strings.Join(leaked, "\n\n"))
		code = 1
	}
	os.Exit(code)
}

// VerifyNoLeaks fails t if, once t's cleanups run, a goroutine started by
// this package is still alive.
func VerifyNoLeaks(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		if leaked := waitForNoGoroutines(); len(leaked) > 0 {
			t.Errorf("%d goroutines leaked:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	})
}

// waitForNoGoroutines returns the package's live goroutines once none are
// left or a few seconds pass. Write and Load wait for their goroutines, but
// one may not have quite returned after signalling the errgroup, so the check
// yields and retries instead of failing at once.
func waitForNoGoroutines() []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaked := packageGoroutines()
		if len(leaked) == 0 || time.Now().After(deadline) {
			return leaked
		}
		runtime.Gosched()
	}
}

func packageGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		// Write and Load start goroutines only through errgroup; matching
		// the creator leaves out the test's own goroutines, which run
		// this package's code too.
		if strings.Contains(g, "created by golang.org/x/sync/errgroup.") ||
			strings.Contains(g, "created by github.com/sesscache/sesscache/snapshot.") {
			out = append(out, g)
		}
	}
	return out
}

// Test hooks for package snapshot_test.

// SetChunkTarget makes Write close chunks at n bytes instead of 256 KiB.
func SetChunkTarget(o *Options, n int) { o.chunkTarget = n }

// SetLookahead makes a fill index queue about n bytes of chunks instead of
// 4 MiB before add blocks.
func SetLookahead(o *Options, n int) { o.lookahead = n }

// SlotCapacity exposes slotCapacity.
func SlotCapacity(o Options) int { return slotCapacity(o) }

// Format constants for tests that craft files.
const (
	HeaderSize    = headerSize
	TrailerSize   = trailerSize
	EntrySize     = entrySize
	FormatVersion = formatVersion
	TempExt       = tmpExt
)

// FileName exposes fileName.
func FileName(lsn uint64) string { return fileName(lsn) }

// TempName exposes tempName.
func TempName(lsn uint64) string { return tempName(lsn) }

// CRC returns the CRC-32C of b.
func CRC(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Chunk is a raw chunk for BuildFile.
type Chunk struct {
	Frames  []byte
	Records uint32
	CRC     uint32 // 0: computed
	Length  uint32 // 0: len(Frames)
}

// Footer overrides BuildFile's trailer fields; zero fields are computed.
type Footer struct {
	Sessions uint64
	LSN      uint64
}

// BuildFile assembles a snapshot file from raw chunks with valid checksums
// (unless a Chunk gives its own CRC), so tests can craft files whose damage
// no checksum catches.
func BuildFile(lsn uint64, created int64, chunks []Chunk, ft Footer) []byte {
	b := appendHeader(nil, header{lsn: lsn, created: created})
	table := make([]entry, len(chunks))
	var sessions uint64
	for i, c := range chunks {
		b = append(b, c.Frames...)
		crc := c.CRC
		if crc == 0 {
			crc = CRC(c.Frames)
		}
		length := c.Length
		if length == 0 {
			length = uint32(len(c.Frames))
		}
		table[i] = entry{length: length, records: c.Records, crc: crc}
		sessions += uint64(c.Records)
	}
	t := trailer{sessions: sessions, lsn: lsn, chunks: uint32(len(chunks))}
	if ft.Sessions != 0 {
		t.sessions = ft.Sessions
	}
	if ft.LSN != 0 {
		t.lsn = ft.LSN
	}
	return appendFooter(b, table, t)
}

// Table returns the offset and record count of each chunk of a valid file,
// so tests can tell which chunk a record came from.
func Table(path string) (offsets []int64, records []uint32, err error) {
	f, err := Options{}.fs().OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	l := &loader{f: f, file: filepath.Base(path)}
	if err := l.readFooter(); err != nil {
		return nil, nil, err
	}
	for _, e := range l.table {
		records = append(records, e.records)
	}
	return l.offsets, records, nil
}
