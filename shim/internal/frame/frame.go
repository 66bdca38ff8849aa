// Package frame encodes the stdio frames exchanged on a shim's attach and
// exec sockets (see StdioSocket in proto/shim/v1/shim.proto).
package frame

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Frame types.
const (
	Stdin      byte = 0
	Stdout     byte = 1
	Stderr     byte = 2
	CloseStdin byte = 3
	Resize     byte = 4
	Exit       byte = 5
)

// MaxPayload is the largest payload a frame may carry.
const MaxPayload = 1 << 20

// Write writes one frame. Callers serialize writes on one connection.
func Write(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("frame payload of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	buf := make([]byte, 5+len(payload))
	buf[0] = typ
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(payload)))
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

// Read reads one frame; buf is reused when large enough.
func Read(r io.Reader, buf []byte) (typ byte, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("frame payload of %d bytes exceeds %d", n, MaxPayload)
	}
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return hdr[0], buf, nil
}

// Uint32s encodes values as consecutive big-endian uint32s.
func Uint32s(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.BigEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// ParseUint32s decodes n big-endian uint32s.
func ParseUint32s(b []byte, n int) ([]uint32, error) {
	if len(b) != 4*n {
		return nil, fmt.Errorf("frame payload of %d bytes, want %d", len(b), 4*n)
	}
	v := make([]uint32, n)
	for i := range v {
		v[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return v, nil
}
