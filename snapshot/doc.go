// Package snapshot writes and loads point-in-time images of every live
// session: compacted logs that let recovery skip the write-ahead log up to the
// snapshot's LSN.
//
// It owns the snapshot directory and the snapshot file format. It reuses
// package wal's framing and record codec unchanged, so a snapshot holds
// exactly the bytes the log would hold for the same Put records. It never
// interprets records beyond checking that they are Puts of the snapshot's
// LSN, never sees a session token (only the engine's digest of one) and never
// logs or reports record contents. It starts goroutines only inside Write and
// Load, and all of them have returned when those do.
//
// # Directory
//
// A snapshot directory holds files named after the snapshot's LSN (log
// sequence number) as 16 lower-case hexadecimal digits:
//
//	0000000000000400.snap                  snapshot at LSN 0x400
//	0000000000009c41.snap                  snapshot at LSN 0x9c41 (newest)
//	0000000000009c41.snap.5f0e3a1c.tmp     a Write in progress, or left by a crash
//
// The snapshot at LSN L holds the state after every record up to and
// including L, and possibly some later ones (snapshots are fuzzy: writes go
// on while one is taken): recovery loads it and replays the log from L+1.
// Write calls Options.BeforePublish, if set, before the snapshot's name
// appears; the engine makes every record the snapshot may hold durable in
// the log there. LSN 0 is never
// a snapshot. Files are created with mode 0600 and the directory with 0700.
// Write creates "<name>.snap.<8 random hex digits>.tmp", fsyncs it, renames it
// to its final name and fsyncs the directory, so a complete ".snap" name only
// ever refers to a complete file. List and Load ignore temporary files and
// names that do not match; Prune removes temporary files.
//
// # File
//
//	+--------------------------------+  offset 0
//	| header, 40 bytes               |
//	+--------------------------------+  offset 40
//	| chunk 0: frames                |
//	+--------------------------------+
//	| chunk 1: frames                |
//	+--------------------------------+
//	| ...                            |
//	+--------------------------------+  offset 40 + sum of chunk lengths
//	| chunk table, 12 bytes a chunk  |
//	+--------------------------------+  offset size - 32
//	| trailer, 32 bytes              |
//	+--------------------------------+  offset size (end of file)
//
// All integers are little-endian. The header:
//
//	+0   magic     8 bytes   "SESSNAP\x00"
//	+8   version   uint32    3 (formatVersion; it follows wal's format version)
//	+12  reserved  uint32    0
//	+16  LSN       uint64    equal to the number in the file name, at least 1
//	+24  created   int64     unix nanoseconds; 0 if unknown
//	+32  CRC       uint32    CRC-32C (Castagnoli) of bytes 0..31
//	+36  reserved  uint32    0
//
// A chunk is a run of wal frames ([wal.AppendFrame]) whose payloads are
// [wal.AppendRecord] encodings of Put records, each carrying the snapshot's
// LSN as its own. Chunks follow one another with no gap, so chunk k starts at
// 40 plus the lengths of chunks 0..k-1. Every chunk holds at least one record
// and is at most [MaxChunkSize] bytes long; a writer closes a chunk before a
// frame would take it past its target size (256 KiB; not part of the format),
// so only a chunk made of one large record exceeds the target. Chunks are what
// Write encodes and Load decodes in parallel, and what bounds Load's memory.
//
// The chunk table has one 12-byte entry per chunk, in file order:
//
//	+0   length    uint32    bytes of frames in the chunk, 1..MaxChunkSize
//	+4   records   uint32    frames in the chunk, at least 1
//	+8   CRC       uint32    CRC-32C of the chunk's bytes
//
// The trailer ends the file, so a reader finds it without scanning:
//
//	+0   magic     8 bytes   "SNAPEND\x00"
//	+8   sessions  uint64    records in the file: the sum of the table's counts
//	+16  LSN       uint64    equal to the header's
//	+24  chunks    uint32    entries in the chunk table
//	+28  CRC       uint32    CRC-32C of the chunk table followed by trailer
//	                         bytes 0..27
//
// The trailer's CRC covers every chunk's CRC, so the whole file is checksummed:
// header by its CRC, each chunk by its table entry (and each frame by its own
// CRC), the table and trailer by the trailer's CRC. Load rejects, as damage,
// a file shorter than a header and a trailer, a bad magic or CRC anywhere,
// non-zero reserved words, a header LSN that disagrees with the file name or
// the trailer, a table whose lengths do not add up to the space between the
// header and the table, any chunk or frame that fails its check, a record that
// is not a canonical Put of the snapshot's LSN, and per-chunk or total counts
// that disagree with the records found. A valid header of any other version,
// older or newer, is not damage but [ErrUnsupportedVersion], naming the
// version: a program must not fall back past a snapshot it merely cannot
// read, nor misread one as damage.
//
// The magics, the header, table entry and trailer layouts, formatVersion,
// [MaxChunkSize] and the CRC polynomial are part of the format, together with
// wal's framing and codec (whose constants wal documents); changing any of
// them needs a new format version. A later version must keep the header's
// first 40 bytes laid out as above so that readers can tell it apart from
// damage.
//
// # Reading
//
// Load reads the header, trailer and chunk table first; every length in them
// is checked against the file's size before anything is sized from it. It
// then reads the file twice, one chunk per worker at a time: the first pass
// verifies every chunk, frame and record without calling back, the second
// decodes again and hands the records to the caller. So a damaged file makes
// no callback, and memory stays at about Workers × the largest chunk plus the
// chunk table, whatever the file's size.
package snapshot
