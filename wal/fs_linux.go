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

func preallocate(f *os.File, size int64) error {
	return control(f, "fallocate", func(fd int) error {
		for {
			// Mode 0 extends the file size too, so writes inside the
			// reserved space change no size metadata at fdatasync time.
			err := syscall.Fallocate(fd, 0, 0, size)
			switch {
			case err == syscall.EINTR:
				continue
			case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
				return nil
			}
			return err
		}
	})
}

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
