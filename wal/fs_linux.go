package wal

import (
	"errors"
	"os"
	"syscall"
)

func datasync(f *os.File) error {
	return control(f, "fdatasync", func(fd int) error {
		for {
			err := syscall.Fdatasync(fd)
			if err != syscall.EINTR {
				return err
			}
		}
	})
}

// preallocate reserves size bytes for f and reports whether it did: a file
// system without fallocate is not an error (segments then grow as they are
// written), but its files must not be mapped.
func preallocate(f *os.File, size int64) (reserved bool, err error) {
	err = control(f, "fallocate", func(fd int) error {
		for {
			// Mode 0 extends the file size too, so writes inside the
			// reserved space change no size metadata at fdatasync time.
			err := syscall.Fallocate(fd, 0, 0, size)
			switch {
			case err == syscall.EINTR:
				continue
			case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
				return nil
			case err == nil:
				reserved = true
			}
			return err
		}
	})
	return reserved, err
}

// Map implements Mapper for space Preallocate reserved.
func (f *osFile) Map(size int64) (Mapping, error) {
	if size <= 0 || size > f.allocated || int64(int(size)) != size {
		return nil, ErrNotMappable
	}
	var b []byte
	err := control(f.File, "mmap", func(fd int) error {
		var err error
		b, err = syscall.Mmap(fd, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		return err
	})
	if err != nil {
		return nil, err
	}
	return osMapping(b), nil
}

type osMapping []byte

func (m osMapping) Bytes() []byte { return m }

func (m osMapping) Unmap() error { return syscall.Munmap(m) }

func control(f *os.File, name string, op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = op(int(fd)) }); err != nil {
		return err
	}
	if opErr != nil {
		return &os.PathError{Op: name, Path: f.Name(), Err: opErr}
	}
	return nil
}
