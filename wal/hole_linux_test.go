package wal_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sesscache/sesscache/wal"
)

// TestHoleAfterLastFsyncIsTorn: after a power cut, the pages of the last
// segment written since its last fsync may reach the disk in any order, so a
// hole of zeros can lie before frames that did (a mapped segment is stored
// into while an fsync writes it back; the kernel writes dirty pages back when
// it likes). Open must then recover the log up to the hole, as a torn tail,
// and not fail with damage; a hole in what an fsync covered stays damage.
// The crash is the files as they are while the log is still open (what the
// page cache holds), with a hole punched into them.
func TestHoleAfterLastFsyncIsTorn(t *testing.T) {
	for _, mode := range []struct {
		name string
		m    wal.MapMode
	}{{"mapped", wal.MapAlways}, {"written", wal.MapNever}} {
		t.Run(mode.name, func(t *testing.T) {
			wal.VerifyNoLeaks(t)
			dir := t.TempDir()
			l, _, _ := openLog(t, dir, wal.Options{Sync: wal.SyncEverySecond, SyncInterval: time.Hour, Map: mode.m}, 0)
			var recs []wal.Record
			for i := range 60 {
				recs = append(recs, appendWait(t, l, smallRecord(i)))
			}
			require.NoError(t, l.Sync())
			synced := len(recs)
			for i := range 120 {
				recs = append(recs, appendWait(t, l, smallRecord(100+i)))
			}
			crash := t.TempDir()
			copyDir(t, dir, crash)
			require.NoError(t, l.Close())
			segs := segmentFiles(t, crash)
			require.Len(t, segs, 1)
			path := filepath.Join(crash, segs[0])
			offs := frameOffsets(t, path)
			require.Len(t, offs, len(recs)+1)
			orig, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.EqualValues(t, offs[synced], binary.LittleEndian.Uint32(orig[28:]),
				"the header records the data end the fsync covered")

			punch := func(t *testing.T, frame int) string {
				d := t.TempDir()
				copyDir(t, crash, d)
				b := append([]byte(nil), orig...)
				clear(b[offs[frame] : offs[frame]+wal.HeaderSize])
				require.NoError(t, os.WriteFile(filepath.Join(d, segs[0]), b, 0o600))
				return d
			}
			t.Run("past the fsync", func(t *testing.T) {
				hole := synced + 30
				info, got, err := replayAll(t, punch(t, hole), wal.Options{}, 0)
				require.NoError(t, err)
				assert.Equal(t, recs[:hole], got)
				assert.Positive(t, info.TornBytes)
			})
			t.Run("before the fsync", func(t *testing.T) {
				_, _, err := replayAll(t, punch(t, synced-10), wal.Options{}, 0)
				var ce *wal.CorruptError
				require.ErrorAs(t, err, &ce)
				assert.EqualValues(t, offs[synced-10], ce.Offset)
				assert.ErrorIs(t, err, wal.ErrEndMarker)
			})
		})
	}
}
