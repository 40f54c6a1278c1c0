package wal

import "time"

// ReplayInfo reports what Open found and did.
type ReplayInfo struct {
	// Records is the number of records applied: those with an LSN above
	// Open's from.
	Records uint64
	// Bytes is the length of the valid data (headers and frames) in the
	// segments read.
	Bytes int64
	// Segments is the number of segment files read. Segments whose records
	// all lie at or below from are not read and not counted.
	Segments int
	// TornBytes is the number of bytes of a torn write truncated from the
	// end of the log, not counting zero-filled preallocated space.
	TornBytes int64
	// SkippedSegments is the number of damaged segments whose rest was
	// skipped because of Options.SkipDamaged, and DamagedSegments their
	// names. Those that are not the last segment stay where they are until
	// RemoveThrough moves them into the quarantine directory.
	SkippedSegments int
	DamagedSegments []string
	// MissingSegments says that the newest segment Options.ExpectSegment
	// named was not found and SkipDamaged went on without it.
	MissingSegments bool
	// LastLSN is the last LSN found in the log, 0 if there is none. Appends
	// continue after the larger of LastLSN and from.
	LastLSN uint64
	// Duration is the time Open took, replay included.
	Duration time.Duration
}

// Stats is a snapshot of a Log's counters. Counters start at zero at Open.
type Stats struct {
	// LastLSN is the last LSN assigned.
	LastLSN uint64
	// WrittenLSN is the highest LSN written to a segment file, that is,
	// handed to the operating system.
	WrittenLSN uint64
	// DurableLSN is the highest LSN covered by a successful fsync.
	DurableLSN uint64
	// BytesAppended is the number of frame bytes appended.
	BytesAppended uint64
	// Records is the number of records appended.
	Records uint64
	// Writes is the number of write calls made to segment files: about one
	// per batch, more where a batch crosses a segment boundary. SyncAlways's
	// writes of zeros ahead of the data are not counted.
	Writes uint64
	// Fsyncs is the number of successful fsyncs of segment data: per batch
	// under SyncAlways, per interval under SyncEverySecond, and for Sync,
	// rotation and Close. Syncs of new files and of the directory are not
	// counted.
	Fsyncs uint64
	// Segments is the number of segment files in the directory, the
	// current one included.
	Segments int
	// DiskBytes is the length of the log data (headers and frames) in those
	// segments, not counting preallocated space. It is what replay reads and
	// what a snapshot would let RemoveThrough reclaim.
	DiskBytes int64
	// TornBytes is ReplayInfo.TornBytes from Open.
	TornBytes int64
	// SkippedSegments is ReplayInfo.SkippedSegments from Open.
	SkippedSegments int
	// Failed is true once the log has failed; Err returns the cause.
	Failed bool
}

// RecordsPerFsync returns Records/Fsyncs, the group commit factor; 0 if
// there has been no fsync.
func (s Stats) RecordsPerFsync() float64 {
	if s.Fsyncs == 0 {
		return 0
	}
	return float64(s.Records) / float64(s.Fsyncs)
}

// Stats returns the log's counters. It is cheap enough to call often but
// takes the append lock briefly.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	st := Stats{
		LastLSN: l.last,
		Records: l.last - l.startLSN,
	}
	l.mu.Unlock()
	st.BytesAppended = l.appendedBytes.Load()
	st.WrittenLSN = l.writtenLSN.Load()
	st.DurableLSN = l.durableLSN.Load()
	st.Writes = l.writes.Load()
	st.Fsyncs = l.fsyncs.Load()
	l.segMu.Lock()
	st.Segments = len(l.segs)
	for _, s := range l.segs {
		st.DiskBytes += s.bytes
	}
	l.segMu.Unlock()
	st.TornBytes = l.replay.TornBytes
	st.SkippedSegments = l.replay.SkippedSegments
	st.Failed = l.err() != nil
	return st
}
