// Package redistier is a session store shared by several processes through
// Redis (or Valkey), with each process's copies in an in-memory engine.
package redistier
