package snapshot

import (
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sesscache/sesscache/internal/leakcheck"
)

// TestMain backs up the per-test VerifyNoLeaks: no goroutine of this package
// may outlive the tests and benchmarks of the binary.
func TestMain(m *testing.M) { leakcheck.Main(m, packageGoroutine) }

// VerifyNoLeaks fails t if, once t's cleanups run, a goroutine started by
// this package is still alive.
func VerifyNoLeaks(t testing.TB) {
	t.Helper()
	leakcheck.Verify(t, packageGoroutine)
}

// packageGoroutine reports whether a stack is of a goroutine Write or Load
// started. They start goroutines only through errgroup; matching the
// creator leaves out the test's own goroutines, which run this package's
// code too.
func packageGoroutine(stack string) bool {
	return strings.Contains(stack, "created by golang.org/x/sync/errgroup.") ||
		strings.Contains(stack, "created by github.com/sesscache/sesscache/snapshot.")
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
