// Package wal is sesscache's write-ahead log: a segmented, append-only file of
// session-store records with group commit, replay and torn-tail repair.
//
// It owns the log directory, the record codec and the framing (both reused by
// package snapshot) and one flusher goroutine per open Log. It never interprets
// records beyond their shape: it does not know what a session is, never sees a
// session token (only the engine's 16-byte digest of one) and never logs record
// contents.
//
// # Directory
//
// A log directory holds segment files named after the LSN (log sequence
// number) of their first record, as 16 lower-case hexadecimal digits:
//
//	0000000000000001.wal      records 1 .. 0x3ff
//	0000000000000400.wal      records 0x400 .. (current segment)
//	spare-0.wal.tmp           preallocated next segment, not yet named
//
// Files are created with mode 0600 and the directory with 0700. Names that do
// not match the pattern are ignored (the spare file is removed at Open). LSNs
// are consecutive across the whole log: the first record of a segment has the
// LSN in its name and every later record has the LSN of the previous plus one.
// A new segment starts when the current one reaches [Options.SegmentSize], or
// at the next append after [Log.Roll].
//
// # Segment file
//
//	+--------------------------+  offset 0
//	| segment header, 32 bytes |
//	+--------------------------+  offset 32
//	| frame                    |
//	| frame                    |
//	| ...                      |
//	+--------------------------+
//	| zero bytes (end marker,  |  preallocated space not yet written
//	| preallocated space)      |
//	+--------------------------+
//
// The segment header (all integers little-endian):
//
//	+0   magic     8 bytes   "SESSWAL\x00"
//	+8   version   uint32    3 (formatVersion)
//	+12  reserved  uint32    0
//	+16  first LSN uint64    equal to the number in the file name
//	+24  CRC       uint32    CRC-32C (Castagnoli) of bytes 0..23
//	+28  synced    uint32    data end durable as of an fsync (see below);
//	                         outside the CRC, updated in place, 0 at first
//
// A reader rejects a header with another magic, a bad CRC, a non-zero
// reserved word or a first LSN that disagrees with the file name. A valid
// header with any other version, older or newer, is an error of its own
// that names the version, never skipped as damage and never read as the
// current format.
// Versions 1 and 2 had shorter Puts (see formatVersion in segment.go); they
// are not read.
//
// # Frame
//
//	+----------------+----------------+------------------------+
//	| length uint32  | CRC-32C uint32 | payload (length bytes)  |
//	+----------------+----------------+------------------------+
//	 <------------ HeaderSize = 8 ----------->
//
// Both integers are little-endian; the CRC covers the payload only. Segments
// are preallocated and zero-filled, so a length of 0 marks the end of written
// data. A length above [MaxFrameSize] is damage: readers reject it before
// allocating or reading anything. HeaderSize, MaxFrameSize, the end marker and
// the CRC polynomial are part of the format; changing any of them needs a new
// format version.
//
// # Record (frame payload)
//
// The payload is exactly one MessagePack array, in canonical form:
//
//	Put    = [1, digest, hint, version, created, lastAccess, idle, absolute,
//	          userID, sealKeyID, data, fingerprint, authAt, label, lsn]
//	Delete = [2, digest, hint, lsn]
//	Touch  = [3, digest, hint, lastAccess, lsn]
//	Batch  = [4, [op, ...], lsn]
//
// with these MessagePack types:
//
//	digest      bin, exactly 16 bytes (a SHA-256 prefix of the token, never the token)
//	hint        uint, at most 0xffff (the engine's shard placement bits)
//	version     uint
//	created     int, unix nanoseconds
//	lastAccess  int, unix nanoseconds
//	idle        int, nanoseconds (idle timeout)
//	absolute    int, unix nanoseconds (absolute deadline)
//	userID      str (bytes are opaque; not checked for UTF-8)
//	sealKeyID   uint, at most 0xffffffff; 0 means data is plaintext, otherwise
//	            the engine sealed data with AES-GCM under that key id
//	data        bin
//	fingerprint uint, the hash of the client fingerprint the session is bound
//	            to; 0 means unbound
//	authAt      int, unix nanoseconds of the session's last authentication;
//	            0 if it never authenticated
//	label       str, the application's name for the session (a device, say)
//	lsn         uint, at least 1
//
// When sealKeyID is not zero, the engine has sealed the Put: version,
// created, lastAccess, idle, absolute, fingerprint and authAt are 0, userID
// and label are empty, and data holds all of them and the session data,
// sealed with AES-256-GCM whose additional data covers op, digest and hint.
// This package only carries the bytes.
//
// A Batch holds at least one sub-record; sub-records are Put, Delete or Touch
// arrays without their lsn element (so 14, 3 and 4 elements long) and never
// another Batch. Its ops apply together under the Batch's LSN.
//
// The LSN is the last element so that a writer can encode and checksum the
// rest of a record outside any lock ([Pending.Encode]); [Log.Append] then
// appends the LSN and finishes the CRC with a few bytes of work.
//
// Records are idempotent state, not deltas: replaying one twice, or over a
// snapshot that already holds it, leaves the same state.
//
// Canonical means the smallest representation for every integer (a
// non-negative int is written as a uint), fixstr/str8/str16/str32 and
// bin8/bin16/bin32 by length, fixarray/array16/array32 by count. The decoder
// is strict: it rejects any other form, wrong types, wrong array lengths,
// unknown or nested ops and trailing bytes. So every payload that decodes
// re-encodes to exactly the same bytes, and a payload has one meaning.
//
// # Durability and recovery
//
// A log writes its segments in one of two ways ([Options.Map]). By
// default it maps them under SyncEverySecond and SyncNo, and writes them
// under SyncAlways.
//
// Mapped: where the file system preallocates a segment's space and the
// [File] is a [Mapper] (Linux), [Log.Append] assigns the record its LSN and
// copies it into the segment's mapping under the append lock. The record is
// then in the page cache, safe from a process crash, with no system call,
// and [Log.Wait] returns at once under SyncEverySecond and SyncNo. The
// flusher goroutine only fsyncs (as the policy, [Log.Sync] or
// [Log.WaitDurable] ask) and finishes full segments: fsync, unmap, trim to
// the data, close. The next segment, preallocated and mapped ahead of time,
// gets its header and its name under the append lock, and its header is
// fsynced before its name is made durable. A store into the mapping cannot
// fail for want of space; an I/O error there would raise SIGBUS, which the
// copy turns into the log's failure (debug.SetPanicOnFault) instead of a
// crash. The bytes on disk are the same in both modes.
//
// Written: [Log.Append] copies a record into the in-memory batch and
// assigns its LSN; [Log.Wait] then blocks as the [SyncPolicy] says. One
// flusher goroutine writes each batch with one write call and, under
// [SyncAlways], fsyncs once for every writer whose record was in the batch
// (group commit). Wait wakes exactly the writers whose records are covered.
// Under SyncAlways the written mode is faster: see the zeros below, which
// a mapping cannot write ahead of its stores.
//
// Under SyncAlways the flusher, once an fsync has woken its writers, holds
// the next batch until as many records as it woke have been appended again,
// for at most as long as that fsync took (and 1 ms): writers that loop come
// back at once, and one fsync then covers all of them instead of about half.
// A lone writer's own append ends the wait. After a wait that timed out with
// fewer than half of them back, the next batch is not held.
//
// Also under SyncAlways, the flusher writes zeros over the preallocated
// space just past the data, 256 KiB at a time, whenever the data reaches
// the end of what it wrote before: on ext4 and XFS an fdatasync after a
// write into space that was only reserved (an unwritten extent) has to
// commit the file system's journal too, and this way only one fsync per
// 256 KiB of log does. Replay cannot tell written zeros from
// reserved space, and needs not: both read as zeros, the end marker.
//
// [Open] replays records in LSN order. In the last segment, a short frame,
// a checksum failure or a zero length followed by more data is a torn
// write when it lies at or past the segment's synced-through offset, or
// when no valid frame follows it anywhere: it is truncated away, with
// whatever follows, counted and logged, and the log goes on. Any other
// damage fails Open with a [*CorruptError] naming the file and offset,
// unless [Options.SkipDamaged] is set.
//
// The synced-through offset (header +28) is why a hole can be a torn
// write. After a power cut, the pages of the last segment written since
// its last fsync may have reached the disk in any order: the kernel writes
// dirty pages back when it likes, and a mapped segment is stored into
// while an fsync writes it back. That leaves zeros (unwritten preallocated
// space) before valid frames. After every fsync that succeeds, the log
// stores the data end it covered into the header, where the next fsync
// makes it durable; so the header never claims more than was durable, and
// a hole before its offset is damage, not a lost write. Records
// acknowledged under SyncAlways lie before the last fsync, and a hole among
// them is damage; under SyncEverySecond and SyncNo the records written
// since the last fsync may be lost to a power cut, as those policies say.
//
// Replay streams each segment through one 1 MiB buffer, grown only for a
// frame longer than that and only once the frame's checksum holds, so
// Open's memory does not grow with the segment size or the length of the
// log. It still reads the whole preallocated tail of the last segment, in
// chunks, to check that nothing but zeros follows the end marker.
//
// A Log is safe for concurrent use. A [Pending] is not.
package wal
